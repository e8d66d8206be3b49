//! The function `#[job]` is applied to, checked and reduced to what the expansion needs. Every
//! misuse is collected with a span on the user's code.

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{FnArg, GenericArgument, ItemFn, PathArguments, ReturnType, Type};

/// One parameter: its type as written, and the owned type that travels.
pub(crate) struct Param {
    pub(crate) ty: Type,
    /// `T` for `&T`, else the type itself.
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
}

pub(crate) struct JobFnAst {
    pub(crate) item: ItemFn,
    pub(crate) params: Vec<Param>,
    pub(crate) output: Output,
}

/// Collects errors so that every misuse is reported at once.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, span: impl Spanned, msg: &str) {
        let e = syn::Error::new(span.span(), msg);
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }

    pub(crate) fn finish(self) -> Result<(), syn::Error> {
        self.0.map_or(Ok(()), Err)
    }
}

impl JobFnAst {
    pub(crate) fn parse(item: ItemFn) -> Result<Self, syn::Error> {
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
        if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
            errors.push(
                &sig.generics,
                "#[spychro::job] cannot be applied to a generic fn: a worker must know the \
                 concrete types to deserialize; write one job per concrete type (elided \
                 lifetimes like `&Config` are fine)",
            );
        }
        if let Some(v) = &sig.variadic {
            errors.push(v, "#[spychro::job] cannot be applied to a variadic fn");
        }
        let mut params = Vec::new();
        for arg in &sig.inputs {
            match arg {
                FnArg::Receiver(r) => errors.push(
                    r,
                    "#[spychro::job] must be on a free fn, not a method: wrap the method call \
                     in a free fn that takes the value as its item",
                ),
                FnArg::Typed(pt) => {
                    if contains_impl_trait(&pt.ty) {
                        errors.push(
                            &pt.ty,
                            "a job's parameter cannot be `impl Trait`: that makes the fn \
                             generic; use a concrete type",
                        );
                        continue;
                    }
                    let (owned, by_ref) = match &*pt.ty {
                        Type::Reference(r) => {
                            if r.mutability.is_some() {
                                errors.push(
                                    &pt.ty,
                                    "a job's parameter cannot be `&mut`: the item and the \
                                     extra arguments are shared by the worker; take it by \
                                     value instead",
                                );
                            }
                            ((*r.elem).clone(), true)
                        }
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
            },
            ReturnType::Type(_, ty) => {
                if contains_impl_trait(ty) {
                    errors.push(
                        ty,
                        "a job cannot return `impl Trait`: the output is sent back to the \
                         caller and needs a concrete, serializable type",
                    );
                }
                match result_ok_type(ty) {
                    Some(ok) => Output {
                        ty: ok,
                        fallible: Some((**ty).clone()),
                    },
                    None => Output {
                        ty: (**ty).clone(),
                        fallible: None,
                    },
                }
            }
        };
        errors.finish()?;
        Ok(JobFnAst {
            item,
            params,
            output,
        })
    }

    /// The span of the function's name, for errors about the whole job.
    pub(crate) fn name_span(&self) -> Span {
        self.item.sig.ident.span()
    }
}

/// `T` when `ty` is a path whose last segment is `Result<T, ...>` (also `io::Result<T>`).
fn result_ok_type(ty: &Type) -> Option<Type> {
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
    match args.args.first()? {
        GenericArgument::Type(t) => Some(t.clone()),
        _ => None,
    }
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
