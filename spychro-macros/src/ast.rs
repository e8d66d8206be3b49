//! The function `#[job]` is applied to, checked and reduced to what the expansion needs. Every
//! misuse is collected with a span on the user's code.

use proc_macro2::Span;
use quote::ToTokens;
use syn::{FnArg, GenericArgument, ItemFn, PathArguments, ReturnType, Type};

/// One parameter: its type as written, and the owned type that travels.
pub(crate) struct Param {
    pub(crate) ty: Type,
    /// `T` for `&T` (`String` for `&str`, `Vec<T>` for `&[T]`, `PathBuf` for `&Path`,
    /// `OsString` for `&OsStr`), else the type itself.
    pub(crate) owned: Type,
    pub(crate) by_ref: bool,
}

/// What the function returns.
pub(crate) struct Output {
    /// The job's output type: the value type (`()` without a return type), or `T` of a
    /// `Result<T, E>`.
    pub(crate) ty: Type,
    /// The whole `Result<T, E>` (or alias like `io::Result<T>`) when `Err` is the item's
    /// failure.
    pub(crate) fallible: Option<Type>,
    /// `E` of `Result<T, E>`, when written.
    pub(crate) error: Option<Type>,
}

/// A function under `#[job]`, reduced as far as it could be. When it was rejected, `errors`
/// holds every misuse and the other fields are a best effort (the item type is missing when
/// the function has no parameter), used to generate stand-in items that keep the user's later
/// code type-checking.
pub(crate) struct JobFnAst {
    pub(crate) item: ItemFn,
    /// The item, then the extra arguments (the context parameter excluded).
    pub(crate) params: Vec<Param>,
    /// The context parameter: its position among all parameters and its message type.
    pub(crate) ctx: Option<(usize, Type)>,
    /// The per-worker state (a `&mut T` parameter after the item): its position among all
    /// parameters and `T`.
    pub(crate) state: Option<(usize, Type)>,
    pub(crate) output: Output,
    pub(crate) errors: Errors,
}

/// Collects errors so that every misuse is reported at once.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, tokens: impl ToTokens, msg: &str) {
        let e = syn::Error::new_spanned(tokens, msg);
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }

    /// Adds `other`'s errors after this one's.
    pub(crate) fn append(&mut self, other: Errors) {
        if let Some(e) = other.0 {
            match &mut self.0 {
                Some(all) => all.combine(e),
                None => self.0 = Some(e),
            }
        }
    }

    pub(crate) fn get(&self) -> Option<&syn::Error> {
        self.0.as_ref()
    }
}

impl JobFnAst {
    /// Checks `item` and reduces it. Never fails: misuses are collected in `errors`.
    pub(crate) fn parse(item: ItemFn) -> Self {
        let mut errors = Errors::default();
        let sig = &item.sig;
        if let Some(t) = &sig.asyncness {
            errors.push(
                t,
                "#[spychro::job] cannot be applied to an async fn: workers call jobs \
                 synchronously; make it a plain fn (block on async work inside it if needed)",
            );
        }
        if let Some(t) = &sig.unsafety {
            errors.push(
                t,
                "#[spychro::job] cannot be applied to an unsafe fn: workers call it without \
                 knowing its safety contract; make it safe and use `unsafe` inside",
            );
        }
        if let Some(abi) = &sig.abi {
            errors.push(abi, "#[spychro::job] cannot be applied to an extern fn");
        }
        if !sig.generics.params.is_empty() {
            errors.push(
                &sig.generics,
                "#[spychro::job] cannot be applied to a generic fn: a worker must know the \
                 concrete types to deserialize; write one job per concrete type (elided \
                 lifetimes like `&Config` are fine)",
            );
        } else if let Some(w) = &sig.generics.where_clause {
            errors.push(
                w,
                "#[spychro::job] cannot be applied to a fn with a where clause: a worker must \
                 know the concrete types; remove the bounds",
            );
        }
        if let Some(v) = &sig.variadic {
            errors.push(v, "#[spychro::job] cannot be applied to a variadic fn");
        }
        let mut params = Vec::new();
        let mut ctx: Option<(usize, Type)> = None;
        let mut state: Option<(usize, Type)> = None;
        for (position, arg) in sig.inputs.iter().enumerate() {
            match arg {
                FnArg::Receiver(r) => errors.push(
                    r,
                    "#[spychro::job] must be on a free fn, not a method: wrap the method call \
                     in a free fn that takes the value as its item",
                ),
                FnArg::Typed(pt) => {
                    if let Some(message) = ctx_message(&pt.ty) {
                        if position == 0 {
                            errors.push(
                                &pt.ty,
                                "a job's first parameter is the item; take the context after \
                                 it, as in `fn f(item: T, ctx: &Ctx<M>)`",
                            );
                            // Its message type still serves the fallback's `JobFn`.
                            ctx = Some((position, message));
                        } else if ctx.is_some() {
                            errors.push(&pt.ty, "a job takes at most one context parameter");
                        } else {
                            ctx = Some((position, message));
                        }
                        continue;
                    }
                    if contains_impl_trait(&pt.ty) {
                        errors.push(
                            &pt.ty,
                            "a job's parameter cannot be `impl Trait`: that makes the fn \
                             generic; use a concrete type",
                        );
                    }
                    let (owned, by_ref) = match &*pt.ty {
                        Type::Reference(r) if r.mutability.is_some() => {
                            if position == 0 {
                                errors.push(
                                    &pt.ty,
                                    "a job's item cannot be `&mut`: each item is the job's to \
                                     take; take it by value (a `&mut` parameter after the \
                                     item is the job's per-worker state)",
                                );
                            } else if state.is_some() {
                                errors.push(
                                    &pt.ty,
                                    "a job takes at most one per-worker state (`&mut` \
                                     parameter); gather what it keeps in one type",
                                );
                                continue;
                            } else {
                                state = Some((position, (*r.elem).clone()));
                                continue;
                            }
                            (owned_of_borrowed(&r.elem), true)
                        }
                        Type::Reference(r) => (owned_of_borrowed(&r.elem), true),
                        other => (other.clone(), false),
                    };
                    params.push(Param {
                        ty: (*pt.ty).clone(),
                        owned,
                        by_ref,
                    });
                }
            }
        }
        if sig.inputs.is_empty() {
            errors.push(
                &sig.ident,
                "a job takes the item as its first parameter: add one (the items of a Job are \
                 passed to it one by one)",
            );
        }
        let output = match &sig.output {
            ReturnType::Default => Output {
                ty: syn::parse_quote!(()),
                fallible: None,
                error: None,
            },
            ReturnType::Type(_, ty) => {
                if contains_impl_trait(ty) {
                    errors.push(
                        ty,
                        "a job cannot return `impl Trait`: the output is sent back to the \
                         caller and needs a concrete, serializable type",
                    );
                }
                match result_types(ty) {
                    Some((ok, error)) => Output {
                        ty: ok,
                        fallible: Some((**ty).clone()),
                        error,
                    },
                    None => Output {
                        ty: (**ty).clone(),
                        fallible: None,
                        error: None,
                    },
                }
            }
        };
        JobFnAst {
            item,
            params,
            ctx,
            state,
            output,
            errors,
        }
    }

    /// Whether the function takes `self`: then it is in an impl block, where the items a job
    /// needs (a struct, impls) cannot be written.
    pub(crate) fn has_receiver(&self) -> bool {
        self.item.sig.receiver().is_some()
    }

    /// The span of the function's name, for items named after it.
    pub(crate) fn name_span(&self) -> Span {
        self.item.sig.ident.span()
    }
}

/// `M` when `ty` is `&Ctx<M>` (or `&spychro::Ctx<'_, M>`), `()` for `&Ctx`.
fn ctx_message(ty: &Type) -> Option<Type> {
    let Type::Reference(r) = ty else { return None };
    let Type::Path(p) = &*r.elem else { return None };
    let last = p.path.segments.last()?;
    if p.qself.is_some() || last.ident != "Ctx" {
        return None;
    }
    let message = match &last.arguments {
        PathArguments::AngleBracketed(args) => args.args.iter().find_map(|a| match a {
            GenericArgument::Type(t) => Some(t.clone()),
            _ => None,
        }),
        _ => None,
    };
    Some(message.unwrap_or_else(|| syn::parse_quote!(())))
}

/// The owned type a borrowed parameter `&elem` is deserialized into: the usual owner of an
/// unsized type (`str`, `[T]`, `Path`, `OsStr`), else `elem` itself. The call then borrows it,
/// and deref coercion turns `&String` into `&str`.
fn owned_of_borrowed(elem: &Type) -> Type {
    match elem {
        Type::Slice(s) => {
            let t = &s.elem;
            syn::parse_quote!(::std::vec::Vec<#t>)
        }
        Type::Path(p) if p.qself.is_none() => {
            let last = p.path.segments.last().map(|s| s.ident.to_string());
            match last.as_deref() {
                Some("str") if p.path.segments.len() == 1 => {
                    syn::parse_quote!(::std::string::String)
                }
                Some("Path") => syn::parse_quote!(::std::path::PathBuf),
                Some("OsStr") => syn::parse_quote!(::std::ffi::OsString),
                _ => elem.clone(),
            }
        }
        _ => elem.clone(),
    }
}

/// `(T, Some(E))` when `ty` is a path whose last segment is `Result<T, E>`, `(T, None)` for
/// aliases like `io::Result<T>`.
fn result_types(ty: &Type) -> Option<(Type, Option<Type>)> {
    let Type::Path(p) = ty else { return None };
    if p.qself.is_some() {
        return None;
    }
    let last = p.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    let mut types = args.args.iter().filter_map(|a| match a {
        GenericArgument::Type(t) => Some(t.clone()),
        _ => None,
    });
    let ok = types.next()?;
    Some((ok, types.next()))
}

fn contains_impl_trait(ty: &Type) -> bool {
    match ty {
        Type::ImplTrait(_) => true,
        Type::Reference(r) => contains_impl_trait(&r.elem),
        Type::Paren(p) => contains_impl_trait(&p.elem),
        Type::Group(g) => contains_impl_trait(&g.elem),
        Type::Slice(s) => contains_impl_trait(&s.elem),
        Type::Array(a) => contains_impl_trait(&a.elem),
        Type::Tuple(t) => t.elems.iter().any(contains_impl_trait),
        Type::Path(p) => p.path.segments.iter().any(|seg| match &seg.arguments {
            PathArguments::AngleBracketed(a) => a.args.iter().any(|arg| match arg {
                GenericArgument::Type(t) => contains_impl_trait(t),
                _ => false,
            }),
            _ => false,
        }),
        _ => false,
    }
}
