//! The expansion of `#[job]`: the user's function moves into a hidden associated fn of a
//! zero-sized type named like the function; a constant of that name derefs to a function
//! pointer (so calls keep working), implements `JobFn`, and is registered for workers.

use proc_macro2::TokenStream;
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Attribute, ItemFn, ReturnType, Type};

use crate::ast::{Errors, JobFnAst};

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
    let mut errors = Errors::default();
    if !args.is_empty() {
        errors.push(&args, "#[spychro::job] takes no arguments");
    }
    let mut ast = JobFnAst::parse(item);
    errors.append(std::mem::take(&mut ast.errors));
    ast.errors = errors;
    match ast.errors.get() {
        None => expand(&ast),
        // A method is in an impl block, where a struct and impls cannot be written: keep the
        // function as it is, so that the only error is ours.
        Some(e) if ast.has_receiver() => {
            let err = e.to_compile_error();
            let item = &ast.item;
            quote!(#err #item)
        }
        Some(e) => fallback(&ast, e),
    }
}

/// What a job's expansion and its fallback share: the public constant named like the
/// function, its zero-sized type, and the user's function moved into a hidden associated fn.
/// The constant and the type are spanned on the function's name, so that notes about them
/// point there.
fn job_items(ast: &JobFnAst, rejected: bool) -> TokenStream {
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = &ast.item;
    let name = &sig.ident;
    let (cfgs, docs, others) = split_attrs(attrs);
    let mut body_sig = sig.clone();
    body_sig.ident = format_ident!("__spychro_body");
    // A rejected function's body is kept, so that errors in it and the uses it makes of
    // imports are still seen, but nothing calls it.
    let allow_unused = rejected.then(|| quote!(#[allow(dead_code)]));
    let name_span = ast.name_span();
    let const_and_struct = quote_spanned! {name_span=>
        #(#cfgs)*
        #(#docs)*
        #[allow(non_upper_case_globals)]
        #allow_unused
        #vis const #name: #name = #name {};

        #(#cfgs)*
        #[allow(non_camel_case_types)]
        #[doc(hidden)]
        #[derive(::core::clone::Clone, ::core::marker::Copy)]
        #vis struct #name {}
    };
    quote! {
        #const_and_struct

        #(#cfgs)*
        impl #name {
            #(#others)*
            #[doc(hidden)]
            #allow_unused
            #body_sig #block
        }
    }
}

/// The function-pointer type a job's constant derefs to: every parameter as written, the
/// context included.
fn fn_pointer(ast: &JobFnAst) -> TokenStream {
    let sig = &ast.item.sig;
    let param_tys = sig.inputs.iter().filter_map(|a| match a {
        syn::FnArg::Typed(pt) => Some(&pt.ty),
        syn::FnArg::Receiver(_) => None,
    });
    let ret_ty = match &sig.output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, t) => quote!(#t),
    };
    quote!(fn(#(#param_tys),*) -> #ret_ty)
}

/// The `(Item, Args)` types of a job's `JobFn` impl, from its parameters' owned types passed
/// through `ty`. Without parameters (only in a rejected function), the item is `ty(_)`.
fn item_and_args(ast: &JobFnAst, mut ty: impl FnMut(&Type) -> TokenStream) -> [TokenStream; 2] {
    let item = ast.params.first().map(|p| ty(&p.owned));
    let extra: Vec<_> = ast.params.iter().skip(1).map(|p| ty(&p.owned)).collect();
    let args = match extra.as_slice() {
        [] => quote!(()),
        [one] => one.clone(),
        many => quote!((#(#many),*)),
    };
    [item.unwrap_or_else(|| ty(&syn::parse_quote!(_))), args]
}

/// `TakesArgs<Args>` for a job with extra arguments; nothing for one without, so that
/// `.args(...)` on it is an error that says so.
fn takes_args(ast: &JobFnAst, args_ty: &TokenStream) -> Option<TokenStream> {
    let name = &ast.item.sig.ident;
    (ast.params.len() > 1).then(|| {
        quote! {
            #[diagnostic::do_not_recommend]
            impl ::spychro::TakesArgs<#args_ty> for #name {
                type Checked = #args_ty;
                fn checked(args: #args_ty) -> #args_ty {
                    args
                }
            }
        }
    })
}

fn expand(ast: &JobFnAst) -> TokenStream {
    let sig = &ast.item.sig;
    let name = &sig.ident;
    let name_str = name.to_string();
    let (cfgs, _, _) = split_attrs(&ast.item.attrs);
    let fn_ptr = fn_pointer(ast);
    let [item_ty, args_ty] = item_and_args(ast, |t| quote!(#t));
    let takes_args = takes_args(ast, &args_ty);

    let item = &ast.params[0];
    let item_expr = if item.by_ref {
        quote!(&item)
    } else {
        quote!(item)
    };
    let extra = &ast.params[1..];
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
    let mut call_args: Vec<TokenStream> = std::iter::once(item_expr).chain(arg_exprs).collect();
    // The context and the state go back to their places, the earlier one first.
    let mut special: Vec<(usize, TokenStream)> = Vec::new();
    if let Some((position, _)) = &ast.ctx {
        special.push((*position, quote!(ctx)));
    }
    if let Some((position, _)) = &ast.state {
        special.push((*position, quote!(state)));
    }
    special.sort_by_key(|(position, _)| *position);
    for (position, arg) in special {
        call_args.insert(position, arg);
    }
    let message_ty = match &ast.ctx {
        Some((_, message)) => quote!(#message),
        None => quote!(()),
    };
    let state_items = state_items(ast.state.as_ref().map(|(_, t)| t));
    let invoke = quote!(#name::__spychro_body(#(#call_args),*));
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
    let items = job_items(ast, false);

    quote! {
        #items

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

            impl ::spychro::AsJob for #name {
                type Job = Self;
                fn as_job(self) -> Self {
                    self
                }
            }

            #takes_args

            impl ::spychro::JobFn for #name {
                type Item = #item_ty;
                type Args = #args_ty;
                type Output = #output_ty;
                type Message = #message_ty;
                const NAME: &'static str =
                    ::core::concat!(::core::module_path!(), "::", #name_str);
                const SIGNATURE: u64 = #hash;

                fn instance() -> ::core::option::Option<Self> {
                    ::core::option::Option::Some(#name {})
                }

                #state_items

                #[allow(unused_variables)]
                fn call(
                    item: Self::Item,
                    args: &Self::Args,
                    state: &mut Self::State,
                    ctx: &::spychro::Ctx<'_, Self::Message>,
                ) -> ::core::result::Result<Self::Output, ::std::string::String> {
                    #call
                }

                fn describe(item: &Self::Item) -> ::core::option::Option<::std::string::String> {
                    #[allow(unused_imports)]
                    use ::spychro::__private::{DescribeDebug as _, DescribeOpaque as _};
                    (&&::spychro::__private::Describe(item)).spychro_describe()
                }

                fn plain_sizes() -> (
                    ::core::option::Option<usize>,
                    ::core::option::Option<usize>,
                ) {
                    #[allow(unused_imports)]
                    use ::spychro::__private::{PlainNo as _, PlainYes as _};
                    (
                        (&&::spychro::__private::Probe::<Self::Item>::NEW).spychro_plain_size(),
                        (&&::spychro::__private::Probe::<Self::Output>::NEW).spychro_plain_size(),
                    )
                }
            }

            #[::spychro::__private::linkme::distributed_slice(::spychro::__private::JOBS)]
            #[linkme(crate = ::spychro::__private::linkme)]
            static ENTRY: ::spychro::__private::JobEntry =
                ::spychro::__private::JobEntry::of::<#name>();

            ::spychro::__private::cluster_entry!(#name);
        };
    }
}

/// The expansion of a rejected function (thiserror's fallback, tokio's
/// `token_stream_with_error`): our errors, then the same constant, type, `Deref` and `JobFn`
/// impls as a job, with bodies that are never run and no registration. Later uses of the
/// name (`Job::new(f, items)`, `f(x)`) then type-check against the types the function
/// declares, and the user sees only what is wrong with the function itself.
///
/// A type that cannot be written outside the function (it names the function's generic
/// parameters, or is `impl Trait`, or the item of a function without parameters) is replaced
/// by `[(); compile_error!(..)]` with the first error: a type that refers to an error, which
/// rustc accepts in every use without a further error (as a type, `compile_error!` would be
/// `()`). The duplicate of the error already emitted is not shown again: rustc drops identical
/// diagnostics.
fn fallback(ast: &JobFnAst, error: &syn::Error) -> TokenStream {
    let sig = &ast.item.sig;
    let name = &sig.ident;
    let name_str = name.to_string();
    let (cfgs, _, _) = split_attrs(&ast.item.attrs);
    let generics = generic_names(&sig.generics);
    let unknown = quote!(__SpychroRejected);
    let mut needs_unknown = false;
    let mut known = |ty: &Type| -> TokenStream {
        if matches!(ty, Type::Infer(_)) || mentions(&ty.to_token_stream(), &generics) {
            needs_unknown = true;
            unknown.clone()
        } else {
            quote!(#ty)
        }
    };
    let [item_ty, args_ty] = item_and_args(ast, &mut known);
    let takes_args = takes_args(ast, &args_ty);
    let output_ty = known(&ast.output.ty);
    let message_ty = match &ast.ctx {
        Some((_, message)) => known(message),
        None => quote!(()),
    };
    let fn_ptr = fn_pointer(ast);
    let fn_ptr = if mentions(&fn_ptr, &generics) {
        needs_unknown = true;
        unknown.clone()
    } else {
        fn_ptr
    };
    let unknown_alias = needs_unknown.then(|| {
        let first = error
            .clone()
            .into_iter()
            .next()
            .unwrap_or_else(|| error.clone());
        let err = first.to_compile_error();
        quote!(type #unknown = [(); #err];)
    });
    let errors = error.to_compile_error();
    let items = job_items(ast, true);
    // A rejected function keeps no state: its other misuses are the ones to report.
    let state_items = state_items(None);

    quote! {
        #errors

        #items

        #(#cfgs)*
        const _: () = {
            #unknown_alias

            impl ::core::ops::Deref for #name {
                type Target = #fn_ptr;
                fn deref(&self) -> &Self::Target {
                    ::core::unreachable!("a rejected #[spychro::job] is never compiled")
                }
            }

            impl ::spychro::__private::Sealed for #name {}

            impl ::spychro::AsJob for #name {
                type Job = Self;
                fn as_job(self) -> Self {
                    self
                }
            }

            #takes_args

            impl ::spychro::JobFn for #name {
                type Item = #item_ty;
                type Args = #args_ty;
                type Output = #output_ty;
                type Message = #message_ty;
                const NAME: &'static str = #name_str;
                const SIGNATURE: u64 = 0;

                #state_items

                fn call(
                    _: Self::Item,
                    _: &Self::Args,
                    _: &mut Self::State,
                    _: &::spychro::Ctx<'_, Self::Message>,
                ) -> ::core::result::Result<Self::Output, ::std::string::String> {
                    ::core::unreachable!("a rejected #[spychro::job] is never compiled")
                }

                fn describe(_: &Self::Item) -> ::core::option::Option<::std::string::String> {
                    ::core::option::Option::None
                }
            }
        };
    }
}

/// The `JobFn` items of a job's per-worker state: `State` and `STATEFUL`, `()` without one.
/// `State` is spanned on the user's type: a type that is not a `WorkerState` of the job's
/// extra arguments is reported there, once.
fn state_items(state: Option<&Type>) -> TokenStream {
    match state {
        Some(state) => quote_spanned! {state.span()=>
            type State = #state;
            const STATEFUL: bool = true;
        },
        None => quote! {
            type State = ();
            const STATEFUL: bool = false;
        },
    }
}

/// The names of a function's generic parameters: types, consts and lifetimes (without `'`).
fn generic_names(generics: &syn::Generics) -> Vec<String> {
    generics
        .params
        .iter()
        .map(|p| match p {
            syn::GenericParam::Type(t) => t.ident.to_string(),
            syn::GenericParam::Const(c) => c.ident.to_string(),
            syn::GenericParam::Lifetime(l) => l.lifetime.ident.to_string(),
        })
        .collect()
}

/// Whether `tokens` (a type) cannot be written outside the function: it names one of its
/// generic parameters or is (or contains) `impl Trait`.
fn mentions(tokens: &TokenStream, generics: &[String]) -> bool {
    tokens.clone().into_iter().any(|t| match t {
        proc_macro2::TokenTree::Ident(i) => i == "impl" || generics.iter().any(|g| i == g),
        proc_macro2::TokenTree::Group(g) => mentions(&g.stream(), generics),
        _ => false,
    })
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
