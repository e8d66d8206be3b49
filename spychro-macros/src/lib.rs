//! Procedural macros for spychro: `#[job]` turns a function into a job entry point that worker
//! processes find by name, and `#[main]` marks `main` as the worker entry. See the `spychro`
//! crate for documentation; generated code calls only `::spychro::__private`.

use proc_macro::TokenStream;

mod ast;
mod expand;
mod main_attr;
mod message_derive;
mod task_attr;

/// Makes a function a spychro job. Documented in the `spychro` crate.
#[proc_macro_attribute]
pub fn job(args: TokenStream, input: TokenStream) -> TokenStream {
    expand::job(args.into(), input.into()).into()
}

/// Marks `main` as the worker entry. Documented in the `spychro` crate.
#[proc_macro_attribute]
pub fn main(args: TokenStream, input: TokenStream) -> TokenStream {
    main_attr::main(args.into(), input.into()).into()
}

/// Registers a `spychro::Task` implementation. Documented in the `spychro` crate.
#[proc_macro_attribute]
pub fn task(args: TokenStream, input: TokenStream) -> TokenStream {
    task_attr::task(args.into(), input.into()).into()
}

/// Derives `spychro::Message` for an enum. Documented in the `spychro` crate.
#[proc_macro_derive(Message, attributes(message))]
pub fn derive_message(input: TokenStream) -> TokenStream {
    message_derive::derive(input.into()).into()
}

/// Registers a `spychro::Actor` implementation. Documented in the `spychro` crate.
#[proc_macro_attribute]
pub fn actor(args: TokenStream, input: TokenStream) -> TokenStream {
    task_attr::actor(args.into(), input.into()).into()
}
