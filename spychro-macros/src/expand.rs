//! The expansion of `#[job]`: the user's function moves into a hidden associated fn of a
//! zero-sized type named like the function; a constant of that name derefs to a function
//! pointer (so calls keep working), implements `JobFn`, and is registered for workers.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Attribute, ItemFn, ReturnType};

use crate::ast::JobFnAst;

pub(crate) fn job(args: TokenStream, input: TokenStream) -> TokenStream {
    let item: ItemFn = match syn::parse2(input.clone()) {
        Ok(item) => item,
        Err(_) => {
            let what = match syn::parse2::<syn::Item>(input.clone()) {
                Ok(syn::Item::Struct(_)) => "a struct",
                Ok(syn::Item::Enum(_)) => "an enum",
                Ok(syn::Item::Impl(_)) => "an impl block",
                Ok(syn::Item::Mod(_)) => "a module",
                Ok(syn::Item::Trait(_)) => "a trait",
                Ok(syn::Item::Const(_) | syn::Item::Static(_)) => "a constant or static",
                _ => "this item",
            };
            let err = syn::Error::new_spanned(
                &input,
                format!("#[spychro::job] can only be applied to a free fn, not to {what}"),
            )
            .to_compile_error();
            return quote!(#err #input);
        }
    };
    if !args.is_empty() {
        let err =
            syn::Error::new_spanned(&args, "#[spychro::job] takes no arguments").to_compile_error();
        return quote!(#err #item);
    }
    match JobFnAst::parse(item.clone()) {
        Ok(ast) => expand(&ast),
        // Keep the user's function so that the rest of their code still compiles and the
        // only errors are ours.
        Err(e) => {
            let err = e.to_compile_error();
            quote!(#err #item)
        }
    }
}

fn expand(ast: &JobFnAst) -> TokenStream {
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = &ast.item;
    let name = &sig.ident;
    let name_str = name.to_string();
    let (cfgs, docs, others) = split_attrs(attrs);

    // Every parameter as written, the context included, for the function-pointer type.
    let param_tys: Vec<_> = sig
        .inputs
        .iter()
        .filter_map(|a| match a {
            syn::FnArg::Typed(pt) => Some(&pt.ty),
            syn::FnArg::Receiver(_) => None,
        })
        .collect();
    let ret_ty = match &sig.output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, t) => quote!(#t),
    };
    let fn_ptr = quote!(fn(#(#param_tys),*) -> #ret_ty);

    let item = &ast.params[0];
    let item_ty = &item.owned;
    let item_expr = if item.by_ref {
        quote!(&item)
    } else {
        quote!(item)
    };
    let extra = &ast.params[1..];
    let owned: Vec<_> = extra.iter().map(|p| &p.owned).collect();
    let args_ty = match owned.as_slice() {
        [] => quote!(()),
        [one] => quote!(#one),
        many => quote!((#(#many),*)),
    };
    let arg_exprs = extra.iter().enumerate().map(|(k, p)| {
        let span = p.ty.span();
        let access = if extra.len() == 1 {
            quote_spanned!(span=> args)
        } else {
            let idx = syn::Index::from(k);
            quote_spanned!(span=> &args.#idx)
        };
        if p.by_ref {
            access
        } else {
            quote_spanned!(span=> ::spychro::__private::CloneArg::clone_arg(#access))
        }
    });
    let body_name = format_ident!("__spychro_body");
    let mut call_args: Vec<TokenStream> = std::iter::once(item_expr).chain(arg_exprs).collect();
    let message_ty = match &ast.ctx {
        Some((position, message)) => {
            call_args.insert(*position, quote!(ctx));
            quote!(#message)
        }
        None => quote!(()),
    };
    let invoke = quote!(#name::#body_name(#(#call_args),*));
    let output_ty = &ast.output.ty;
    let call = match (&ast.output.fallible, &ast.output.error) {
        (None, _) => quote!(::core::result::Result::Ok(#invoke)),
        (Some(_), Some(e)) => {
            let message =
                quote_spanned!(e.span()=> <#e as ::spychro::__private::JobError>::message);
            quote!(#invoke.map_err(|e| #message(&e)))
        }
        (Some(full), None) => {
            let message = quote_spanned!(full.span()=> ::spychro::__private::JobError::message);
            quote!(#invoke.map_err(|e| #message(&e)))
        }
    };
    let hash = fnv1a(&format!("{name_str} {fn_ptr}"));

    let mut body_sig = sig.clone();
    body_sig.ident = body_name;
    let name_span = ast.name_span();
    let const_item = quote_spanned! {name_span=>
        #[allow(non_upper_case_globals)]
        #vis const #name: #name = #name {};
    };

    quote! {
        #(#cfgs)*
        #(#docs)*
        #const_item

        #(#cfgs)*
        #[allow(non_camel_case_types)]
        #[doc(hidden)]
        #[derive(::core::clone::Clone, ::core::marker::Copy)]
        #vis struct #name {}

        #(#cfgs)*
        impl #name {
            #(#others)*
            #[doc(hidden)]
            #body_sig #block
        }

        #(#cfgs)*
        impl ::core::ops::Deref for #name {
            type Target = #fn_ptr;
            fn deref(&self) -> &Self::Target {
                const F: #fn_ptr = #name::__spychro_body;
                &F
            }
        }

        #(#cfgs)*
        const _: () = {
            impl ::spychro::__private::Sealed for #name {}

            impl ::spychro::JobFn for #name {
                type Item = #item_ty;
                type Args = #args_ty;
                type Output = #output_ty;
                type Message = #message_ty;
                const NAME: &'static str =
                    ::core::concat!(::core::module_path!(), "::", #name_str);
                const SIGNATURE: u64 = #hash;

                #[allow(unused_variables)]
                fn call(
                    item: Self::Item,
                    args: &Self::Args,
                    ctx: &::spychro::Ctx<'_, Self::Message>,
                ) -> ::core::result::Result<Self::Output, ::std::string::String> {
                    #call
                }

                fn describe(item: &Self::Item) -> ::core::option::Option<::std::string::String> {
                    #[allow(unused_imports)]
                    use ::spychro::__private::{DescribeDebug as _, DescribeOpaque as _};
                    (&&::spychro::__private::Describe(item)).spychro_describe()
                }
            }

            #[::spychro::__private::linkme::distributed_slice(::spychro::__private::JOBS)]
            #[linkme(crate = ::spychro::__private::linkme)]
            static ENTRY: ::spychro::__private::JobEntry =
                ::spychro::__private::JobEntry::of::<#name>();
        };
    }
}

/// `(cfg, doc-like, other)` attributes: `cfg` goes on every generated item, docs and
/// `deprecated` on the public constant, the rest on the function body.
fn split_attrs(attrs: &[Attribute]) -> (Vec<&Attribute>, Vec<&Attribute>, Vec<&Attribute>) {
    let (mut cfgs, mut docs, mut others) = (Vec::new(), Vec::new(), Vec::new());
    for a in attrs {
        let path = a.path();
        if path.is_ident("cfg") {
            cfgs.push(a);
        } else if path.is_ident("doc") || path.is_ident("deprecated") {
            docs.push(a);
        } else {
            others.push(a);
        }
    }
    (cfgs, docs, others)
}

/// FNV-1a, 64 bits: a stable hash of the signature's text.
pub(crate) fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}
