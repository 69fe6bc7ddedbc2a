//! Errors thrown to JavaScript: an `Error` with a `code` property the package maps to its
//! `NookError` subclasses, so a page can tell a broken bundle from a bad request without
//! parsing messages.

use nook_core::NookError;
use wasm_bindgen::JsValue;

/// What kind of failure; the strings are part of the package's API (`err.code`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    /// The bundle is corrupt, tampered with, mismatched or unreadable.
    Bundle,
    /// The bundle could not be fetched (offline with nothing cached, HTTP error).
    Network,
    /// The request is malformed (bad `k`, diversity, query weight, a query too long).
    Request,
    /// An item id the catalogue lacks where one is required (the subject of "more like this").
    UnknownItem,
    /// A failure inside nook (a bug): the message says what.
    Internal,
}

impl Code {
    fn as_str(self) -> &'static str {
        match self {
            Code::Bundle => "bundle",
            Code::Network => "network",
            Code::Request => "request",
            Code::UnknownItem => "unknown_item",
            Code::Internal => "internal",
        }
    }
}

/// A JavaScript `Error` with `message` and `code`.
pub fn coded(code: Code, message: impl std::fmt::Display) -> JsValue {
    let error = js_sys::Error::new(&message.to_string());
    let _ = js_sys::Reflect::set(&error, &"code".into(), &code.as_str().into());
    error.into()
}

/// A nook-core error, coded by its kind.
pub fn from_core(e: NookError) -> JsValue {
    let code = match &e {
        NookError::Bundle(_) | NookError::Data(_) => Code::Bundle,
        NookError::Request(_) => Code::Request,
        NookError::UnknownItem(_) => Code::UnknownItem,
        NookError::Encoder(_) | NookError::Tensor(_) => Code::Internal,
    };
    coded(code, e)
}

/// A nook-core error met while loading a bundle: whatever it is, the bundle is at fault.
pub fn bundle(e: impl std::fmt::Display) -> JsValue {
    coded(Code::Bundle, e)
}
