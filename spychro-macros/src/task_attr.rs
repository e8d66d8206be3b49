//! `#[spychro::task]` on `impl Task for T` and `#[spychro::actor]` on `impl Actor for T`:
//! register `T` so that a child process can run it (`Process::task(value)`, a supervisor's
//! `add(value)`), through a hidden job that calls `Task::run` or serves the actor.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{ItemImpl, Type};

pub(crate) fn task(args: TokenStream, input: TokenStream) -> TokenStream {
    register(args, input, Kind::Task)
}

pub(crate) fn actor(args: TokenStream, input: TokenStream) -> TokenStream {
    register(args, input, Kind::Actor)
}

#[derive(Clone, Copy)]
enum Kind {
    Task,
    Actor,
}

fn register(args: TokenStream, input: TokenStream, kind: Kind) -> TokenStream {
    let (attr, traits, what): (_, &[&str], _) = match kind {
        Kind::Task => ("task", &["Task"], "task"),
        Kind::Actor => ("actor", &["Actor", "Logger"], "actor"),
    };
    let usage = match kind {
        Kind::Task => "#[spychro::task] goes on an `impl spychro::Task for YourType` block",
        Kind::Actor => {
            "#[spychro::actor] goes on an `impl spychro::Actor for YourType` (or \
             `impl spychro::Logger for YourType`) block"
        }
    };
    let item: ItemImpl = match syn::parse2(input.clone()) {
        Ok(item) => item,
        Err(_) => {
            let err = syn::Error::new_spanned(&input, usage).to_compile_error();
            return quote!(#err #input);
        }
    };
    if !args.is_empty() {
        let err = syn::Error::new_spanned(&args, format!("#[spychro::{attr}] takes no arguments"))
            .to_compile_error();
        return quote!(#err #item);
    }
    let trait_name = item
        .trait_
        .as_ref()
        .and_then(|(_, path, _)| path.segments.last())
        .map(|s| s.ident.to_string());
    let is_task = trait_name
        .as_deref()
        .is_some_and(|name| traits.contains(&name));
    if !is_task {
        // The other registering attribute, when the block implements its trait.
        let other = match (kind, trait_name.as_deref()) {
            (Kind::Task, Some("Actor" | "Logger")) => Some("actor"),
            (Kind::Actor, Some("Task")) => Some("task"),
            _ => None,
        };
        let err = match (&item.trait_, other) {
            (Some((_, path, _)), Some(other)) => syn::Error::new_spanned(
                path,
                format!(
                    "{usage}; an `impl {}` block is registered with #[spychro::{other}]",
                    trait_name.unwrap_or_default()
                ),
            ),
            (Some((_, path, _)), None) => syn::Error::new_spanned(path, usage),
            (None, _) => syn::Error::new_spanned(&item.self_ty, usage),
        };
        let err = err.to_compile_error();
        return quote!(#err #item);
    }
    if !item.generics.params.is_empty() {
        let err = syn::Error::new_spanned(
            &item.generics,
            format!(
                "a {what} cannot be generic: a child process must know the concrete type to \
                 deserialize"
            ),
        )
        .to_compile_error();
        return quote!(#err #item);
    }
    let ty = &item.self_ty;
    let ident = match &**ty {
        Type::Path(p) => p.path.segments.last().map(|s| s.ident.clone()),
        _ => None,
    };
    let Some(ident) = ident else {
        let err = syn::Error::new_spanned(ty, format!("a {what} must be a named type"))
            .to_compile_error();
        return quote!(#err #item);
    };
    let suffix = match kind {
        Kind::Task => "run",
        Kind::Actor => "serve",
    };
    let name = format!("{}::{suffix}", quote!(#ty).to_string().replace(' ', ""));
    let signature = crate::expand::fnv1a(&format!("{what} {name}"));
    let _ = ident;
    let (marker, runner) = match kind {
        Kind::Task => (
            quote!(::spychro::__private::TaskJob),
            quote!(::spychro::__private::TaskRunner<#ty>),
        ),
        Kind::Actor => (
            quote!(::spychro::__private::ActorJob),
            quote!(::spychro::__private::ActorRunner<#ty>),
        ),
    };
    quote! {
        #item

        const _: () = {
            impl #marker for #ty {
                const NAME: &'static str = ::core::concat!(::core::module_path!(), "::", #name);
                const SIGNATURE: u64 = #signature;
            }

            #[::spychro::__private::linkme::distributed_slice(::spychro::__private::JOBS)]
            #[linkme(crate = ::spychro::__private::linkme)]
            static ENTRY: ::spychro::__private::JobEntry =
                ::spychro::__private::JobEntry::of::<#runner>();
        };
    }
}
