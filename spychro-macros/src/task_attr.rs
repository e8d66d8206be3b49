//! `#[spychro::task]` on `impl Task for T`: registers `T` so that `Process::task(value)` can
//! run it in a child, through a hidden `#[job]` that calls `Task::run`.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{ItemImpl, Type};

pub(crate) fn task(args: TokenStream, input: TokenStream) -> TokenStream {
    let item: ItemImpl = match syn::parse2(input.clone()) {
        Ok(item) => item,
        Err(_) => {
            let err = syn::Error::new_spanned(
                &input,
                "#[spychro::task] goes on an `impl spychro::Task for YourType` block",
            )
            .to_compile_error();
            return quote!(#err #input);
        }
    };
    if !args.is_empty() {
        let err = syn::Error::new_spanned(&args, "#[spychro::task] takes no arguments")
            .to_compile_error();
        return quote!(#err #item);
    }
    let is_task = item
        .trait_
        .as_ref()
        .and_then(|(_, path, _)| path.segments.last())
        .is_some_and(|s| s.ident == "Task");
    if !is_task {
        let err = syn::Error::new_spanned(
            &item.self_ty,
            "#[spychro::task] goes on an `impl spychro::Task for YourType` block",
        )
        .to_compile_error();
        return quote!(#err #item);
    }
    if !item.generics.params.is_empty() {
        let err = syn::Error::new_spanned(
            &item.generics,
            "a task cannot be generic: a child process must know the concrete type to \
             deserialize",
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
        let err = syn::Error::new_spanned(ty, "a task must be a named type").to_compile_error();
        return quote!(#err #item);
    };
    let name = format!("{}::run", quote!(#ty).to_string().replace(' ', ""));
    let signature = crate::expand::fnv1a(&format!("task {name}"));
    let _ = ident;
    quote! {
        #item

        const _: () = {
            impl ::spychro::__private::TaskJob for #ty {
                const NAME: &'static str = ::core::concat!(::core::module_path!(), "::", #name);
                const SIGNATURE: u64 = #signature;
            }

            #[::spychro::__private::linkme::distributed_slice(::spychro::__private::JOBS)]
            #[linkme(crate = ::spychro::__private::linkme)]
            static ENTRY: ::spychro::__private::JobEntry =
                ::spychro::__private::JobEntry::of::<::spychro::__private::TaskRunner<#ty>>();
        };
    }
}
