//! HTTP/2 error codes (RFC 9113 §7) and the verdict [`parse`](super::parse) gives on a frame the rules refuse:
//! which error to send, and whether it ends the connection (GOAWAY) or one stream (RST_STREAM), §5.4.

use std::fmt;

/// An HTTP/2 error code (RFC 9113 §7), any u32. Codes this endpoint does not know are kept as they are, so that
/// logs show what the peer sent; §7 forbids special behaviour for them (they may be taken as INTERNAL_ERROR).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorCode(pub u32);

impl ErrorCode {
    /// Graceful shutdown, or a stream closed without error.
    pub const NO_ERROR: ErrorCode = ErrorCode(0x0);
    /// An unspecific protocol violation.
    pub const PROTOCOL_ERROR: ErrorCode = ErrorCode(0x1);
    /// An unexpected internal error of the sender.
    pub const INTERNAL_ERROR: ErrorCode = ErrorCode(0x2);
    /// The peer broke the flow-control protocol.
    pub const FLOW_CONTROL_ERROR: ErrorCode = ErrorCode(0x3);
    /// A SETTINGS frame was not acknowledged in time.
    pub const SETTINGS_TIMEOUT: ErrorCode = ErrorCode(0x4);
    /// A frame came on a stream already half-closed by the sender.
    pub const STREAM_CLOSED: ErrorCode = ErrorCode(0x5);
    /// A frame had an invalid size.
    pub const FRAME_SIZE_ERROR: ErrorCode = ErrorCode(0x6);
    /// The stream was refused before any application processing.
    pub const REFUSED_STREAM: ErrorCode = ErrorCode(0x7);
    /// The stream is no longer needed.
    pub const CANCEL: ErrorCode = ErrorCode(0x8);
    /// The field-compression context (HPACK) cannot be maintained.
    pub const COMPRESSION_ERROR: ErrorCode = ErrorCode(0x9);
    /// A CONNECT tunnel was reset or abnormally closed.
    pub const CONNECT_ERROR: ErrorCode = ErrorCode(0xa);
    /// The peer's behaviour might be generating excessive load.
    pub const ENHANCE_YOUR_CALM: ErrorCode = ErrorCode(0xb);
    /// The transport's security properties are not good enough.
    pub const INADEQUATE_SECURITY: ErrorCode = ErrorCode(0xc);
    /// The request must be retried over HTTP/1.1.
    pub const HTTP_1_1_REQUIRED: ErrorCode = ErrorCode(0xd);

    /// The code's name in RFC 9113 §7, or `None` for a code it does not define.
    pub fn name(self) -> Option<&'static str> {
        const NAMES: [&str; 14] = [
            "NO_ERROR",
            "PROTOCOL_ERROR",
            "INTERNAL_ERROR",
            "FLOW_CONTROL_ERROR",
            "SETTINGS_TIMEOUT",
            "STREAM_CLOSED",
            "FRAME_SIZE_ERROR",
            "REFUSED_STREAM",
            "CANCEL",
            "COMPRESSION_ERROR",
            "CONNECT_ERROR",
            "ENHANCE_YOUR_CALM",
            "INADEQUATE_SECURITY",
            "HTTP_1_1_REQUIRED",
        ];
        usize::try_from(self.0).ok().and_then(|i| NAMES.get(i)).copied()
    }
}

/// The RFC name, or the code in hex (`0xff`) when it has none.
impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "{:#x}", self.0),
        }
    }
}

/// As `Display`: logs and test failures read better with the name than with `ErrorCode(1)`.
impl fmt::Debug for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A frame the rules refuse: the error RFC 9113 prescribes, on the connection (answer with GOAWAY and close) or
/// on one stream (answer with RST_STREAM; the connection goes on, and the refused frame has been taken off the
/// buffer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// A connection error (§5.4.1).
    Connection(ErrorCode),
    /// A stream error (§5.4.2) on the stream given.
    Stream(u32, ErrorCode),
}

impl FrameError {
    /// The error code to send, whichever the scope.
    pub fn code(self) -> ErrorCode {
        match self {
            FrameError::Connection(code) | FrameError::Stream(_, code) => code,
        }
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Connection(code) => write!(f, "connection error {code}"),
            FrameError::Stream(stream, code) => write!(f, "stream {stream} error {code}"),
        }
    }
}

impl std::error::Error for FrameError {}
