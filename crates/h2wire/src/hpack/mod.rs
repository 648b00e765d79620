//! HPACK (RFC 7541): the header compression between the frame layer's joined header blocks and the fields the
//! gateway's HTTP/2 connection works with.
//!
//! Decoding ([`Decoder`]) follows the peer's dynamic table and hands each field out as a [`Field`] that is
//! already checked against HTTP/2's field rules (RFC 9113 §8.2), so the connection never re-parses names or
//! values. The dynamic table keeps its entries as ready [`Field`]s, so a field indexed from it (the common case:
//! the same path, authority and user-agent on every request) costs reference-count bumps, not copies or checks.
//!
//! Encoding ([`Encoder`]) is deliberately simple, because its cost is per response: static-table indexes where
//! the static table has the field or its name, plain literals otherwise, no Huffman coding and no dynamic
//! table. That is what RFC 7541 allows any encoder to do, and it never needs a dynamic table size update.

mod decoder;
mod encoder;
mod field;
mod huffman;
mod integer;
mod table;

#[cfg(test)]
mod tests;

pub use decoder::Decoder;
pub use encoder::Encoder;
pub use field::{Field, Pseudo};

use std::fmt;

/// What went wrong decoding a header block: always a connection error COMPRESSION_ERROR (RFC 9113 §4.3),
/// because the decoder's dynamic table can no longer be trusted to match the peer's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// An index of 0, or one beyond the static and dynamic tables (RFC 7541 §2.3.3).
    IndexOutOfRange,
    /// An integer above 2^32 - 1, or one spread over more than the five continuation octets such a value needs
    /// (RFC 7541 §5.1).
    IntegerOverflow,
    /// The block ends inside an integer or a string.
    Truncated,
    /// A Huffman-coded string whose padding is longer than 7 bits or not all ones (RFC 7541 §5.2).
    HuffmanPadding,
    /// A Huffman-coded string containing the EOS symbol (RFC 7541 §5.2).
    HuffmanEos,
    /// A dynamic table size update above the SETTINGS_HEADER_TABLE_SIZE this endpoint advertised (§6.3).
    SizeUpdateTooLarge,
    /// A dynamic table size update after the block's first field (RFC 7541 §4.2).
    SizeUpdateNotAtStart,
    /// More than two dynamic table size updates at the start of one block: RFC 7541 §4.2 needs at most two
    /// (the smallest size since the last block, then the final one).
    TooManySizeUpdates,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DecodeError::IndexOutOfRange => "HPACK index 0 or beyond the tables",
            DecodeError::IntegerOverflow => "HPACK integer too large",
            DecodeError::Truncated => "HPACK block ends inside a representation",
            DecodeError::HuffmanPadding => "HPACK Huffman string with invalid padding",
            DecodeError::HuffmanEos => "HPACK Huffman string containing EOS",
            DecodeError::SizeUpdateTooLarge => "HPACK dynamic table size update above the advertised maximum",
            DecodeError::SizeUpdateNotAtStart => "HPACK dynamic table size update after a field",
            DecodeError::TooManySizeUpdates => "more than two HPACK dynamic table size updates in a block",
        })
    }
}

impl std::error::Error for DecodeError {}

/// Whether a block's fields stayed within the header-list size the caller allows (SETTINGS_MAX_HEADER_LIST_SIZE,
/// RFC 9113 §6.5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListSize {
    /// Every field was handed out.
    Within,
    /// The fields' total size went over the limit; the fields from the one that crossed it on were not handed
    /// out. The decoder's table is still in step with the peer's, so the connection can go on.
    TooLarge,
}
