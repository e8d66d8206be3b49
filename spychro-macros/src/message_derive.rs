//! `#[derive(spychro::Message)]` on an enum: one message kind per variant, in a companion
//! `<Name>Kind` enum, with an optional parent per kind (`#[message(parent = Variant)]`), so
//! that a supervisor's listeners can ask for a kind and everything below it.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::{Data, DeriveInput, Ident};

pub(crate) fn derive(input: TokenStream) -> TokenStream {
    match expand(input) {
        Ok(tokens) => tokens,
        Err(e) => e.to_compile_error(),
    }
}

fn expand(input: TokenStream) -> syn::Result<TokenStream> {
    let input: DeriveInput = syn::parse2(input)?;
    let Data::Enum(data) = &input.data else {
        return Err(syn::Error::new_spanned(
            &input.ident,
            "#[derive(spychro::Message)] goes on an enum: each variant is a message kind",
        ));
    };
    if !input.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &input.generics,
            "a supervisor's message enum cannot be generic: every process must decode the \
             same concrete type; give its variants concrete types",
        ));
    }
    if data.variants.is_empty() {
        return Err(syn::Error::new_spanned(
            &input.ident,
            "a message enum needs at least one variant (one message kind)",
        ));
    }
    let names: Vec<&Ident> = data.variants.iter().map(|v| &v.ident).collect();
    // Each variant's parent, by index.
    let mut parents: Vec<Option<usize>> = Vec::new();
    for v in &data.variants {
        let mut parent = None;
        for attr in v.attrs.iter().filter(|a| a.path().is_ident("message")) {
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("parent") {
                    if parent.is_some() {
                        return Err(meta.error(
                            "a message kind has at most one parent: keep one `parent = ...`",
                        ));
                    }
                    let p: Ident = meta.value()?.parse()?;
                    let Some(i) = names.iter().position(|n| **n == p) else {
                        return Err(syn::Error::new_spanned(
                            &p,
                            format!(
                                "`{p}` is not a variant of `{}`: a parent kind must be one of \
                                 its variants",
                                input.ident
                            ),
                        ));
                    };
                    parent = Some(i);
                    Ok(())
                } else {
                    let key = meta
                        .path
                        .segments
                        .iter()
                        .map(|s| s.ident.to_string())
                        .collect::<Vec<_>>()
                        .join("::");
                    Err(meta.error(format!(
                        "unknown key `{key}` in #[message(...)]: the only key is `parent`, \
                         as in `#[message(parent = OtherVariant)]`"
                    )))
                }
            })?;
        }
        parents.push(parent);
    }
    // No kind may be its own ancestor.
    for (i, v) in data.variants.iter().enumerate() {
        let mut chain = vec![i];
        let mut at = parents[i];
        while let Some(p) = at {
            chain.push(p);
            if p == i {
                let chain: Vec<String> = chain.iter().map(|&k| names[k].to_string()).collect();
                return Err(syn::Error::new_spanned(
                    &v.ident,
                    format!(
                        "message kind `{}` is its own ancestor: its parents form a cycle ({}); \
                         remove the `#[message(parent = ...)]` of one of them",
                        v.ident,
                        chain.join(" -> ")
                    ),
                ));
            }
            if chain.len() > parents.len() {
                // A cycle above this kind, reported at a kind inside it.
                break;
            }
            at = parents[p];
        }
    }
    let vis = &input.vis;
    let ident = &input.ident;
    let kind = format_ident!("{}Kind", ident);
    let indexes = (0..names.len() as u32).collect::<Vec<_>>();
    let parent_arms = parents.iter().zip(&names).map(|(p, n)| match p {
        Some(p) => {
            let p = names[*p];
            quote!(#kind::#n => ::core::option::Option::Some(#kind::#p))
        }
        None => quote!(#kind::#n => ::core::option::Option::None),
    });
    let name_strs = names.iter().map(|n| n.to_string());
    let debug_name = format!("{ident}::DebugLogger");
    let signature = crate::expand::fnv1a(&format!("message {ident} {}", names.len()));
    let doc = format!(
        "The kinds of [`{ident}`] (one per variant), made by `#[derive(spychro::Message)]`."
    );
    Ok(quote! {
        #[doc = #doc]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #vis enum #kind {
            #(
                #[allow(missing_docs)]
                #names
            ),*
        }

        impl ::spychro::MessageKind for #kind {
            const ALL: &'static [Self] = &[#(#kind::#names),*];
            fn index(self) -> u32 {
                match self { #(#kind::#names => #indexes),* }
            }
            fn name(self) -> &'static str {
                match self { #(#kind::#names => #name_strs),* }
            }
            fn parent(self) -> ::core::option::Option<Self> {
                match self { #(#parent_arms),* }
            }
        }

        impl ::spychro::Message for #ident {
            type Kind = #kind;
            const DEBUG_LOGGER: &'static str =
                ::core::concat!(::core::module_path!(), "::", #debug_name);
            const SIGNATURE: u64 = #signature;
            fn kind(&self) -> #kind {
                match self { #(#ident::#names { .. } => #kind::#names),* }
            }
        }
        // The enum's DebugLogger, registered here so that children can run it.
        const _: () = {
            #[::spychro::__private::linkme::distributed_slice(::spychro::__private::JOBS)]
            #[linkme(crate = ::spychro::__private::linkme)]
            static ENTRY: ::spychro::__private::JobEntry = ::spychro::__private::JobEntry::of::<
                ::spychro::__private::ActorRunner<::spychro::DebugLogger<#ident>>,
            >();
        };
    })
}
