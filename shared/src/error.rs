//! The one error type of nook-core: every failure is a value, never a panic.

#[derive(Debug, thiserror::Error)]
pub enum NookError {
    #[error("bundle: {0}")]
    Bundle(String),
    /// A stored table or tensor file is malformed (the message names the file).
    #[error("{0}")]
    Data(String),
    #[error("encoder: {0}")]
    Encoder(String),
    #[error("request: {0}")]
    Request(String),
    /// An item id the catalogue does not hold, where one it holds is required.
    #[error("request: unknown item id {0:?}")]
    UnknownItem(String),
    #[error("tensor: {0}")]
    Tensor(#[from] candle_core::Error),
}

pub type Result<T, E = NookError> = std::result::Result<T, E>;

impl NookError {
    pub fn bundle(msg: impl Into<String>) -> Self {
        Self::Bundle(msg.into())
    }
    pub fn data(msg: impl Into<String>) -> Self {
        Self::Data(msg.into())
    }
    pub fn encoder(msg: impl Into<String>) -> Self {
        Self::Encoder(msg.into())
    }
    pub fn request(msg: impl Into<String>) -> Self {
        Self::Request(msg.into())
    }
}
