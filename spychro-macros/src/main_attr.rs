//! `#[spychro::main]`: makes entering worker mode the first statement of `main`.

use proc_macro2::TokenStream;
use quote::quote;
use syn::ItemFn;

pub(crate) fn main(args: TokenStream, input: TokenStream) -> TokenStream {
    let mut item: ItemFn = match syn::parse2(input.clone()) {
        Ok(item) => item,
        Err(_) => {
            let err = syn::Error::new(
                proc_macro2::Span::call_site(),
                "#[spychro::main] can only be applied to `fn main`",
            )
            .to_compile_error();
            return quote!(#err #input);
        }
    };
    if !args.is_empty() {
        let err = syn::Error::new_spanned(&args, "#[spychro::main] takes no arguments")
            .to_compile_error();
        return quote!(#err #item);
    }
    if let Some(t) = &item.sig.asyncness {
        let err = syn::Error::new_spanned(
            t,
            "#[spychro::main] goes on a synchronous main; with an async runtime's attribute, \
             call `spychro::init()` first in a synchronous main instead",
        )
        .to_compile_error();
        return quote!(#err #item);
    }
    item.block
        .stmts
        .insert(0, syn::parse_quote!(::spychro::__private::enter_worker();));
    quote!(#item)
}
