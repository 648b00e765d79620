//! Header block decoding (RFC 7541 §3, §6): the representations of one joined header block, in order, applied
//! to the dynamic table and handed to the caller as [`Field`]s.
//!
//! Every error is fatal to the connection (the tables may no longer match the peer's), so decoding stops at the
//! first one; a field that is valid HPACK but not a valid HTTP/2 field is not an error here
//! ([`Field::Invalid`]). Literal values that are not Huffman-coded are slices of the block, not copies.
//!
//! Literals are remembered ([`Recent`]): a peer that does not reuse its dynamic table's entries (nginx sends
//! every response's fields as new literals, Huffman-coded) repeats the same bytes block after block, and bytes
//! seen before decode to the field they decoded to then, without Huffman decoding or checking them again (a
//! literal with incremental indexing still goes into the table). Only representations whose meaning cannot
//! change are remembered: a literal name, or a name from the static table, never one from the dynamic table
//! (whose entries move), and never a field the peer marked never-indexed (its value is sensitive, RFC 7541
//! §7.1.3).

use bytes::Bytes;

use super::field::{Field, Name};
use super::table::{DynamicTable, STATIC_ENTRIES};
use super::{DecodeError, ListSize, huffman, integer};

/// Literals remembered per connection, and the longest one remembered (representation bytes).
const RECENT: usize = 8;
const RECENT_MAX_LEN: usize = 96;

/// The last literals, by their representation's bytes ([`RECENT`] of them, replaced in turn).
#[derive(Debug, Default)]
struct Recent {
    entries: Vec<(Box<[u8]>, Field)>,
    next: usize,
}

impl Recent {
    fn get(&self, raw: &[u8]) -> Option<&Field> {
        self.entries.iter().find(|(seen, _)| **seen == *raw).map(|(_, field)| field)
    }

    fn put(&mut self, raw: &[u8], field: &Field) {
        let entry = (Box::from(raw), field.clone());
        if self.entries.len() < RECENT {
            self.entries.push(entry);
        } else {
            self.entries[self.next] = entry;
            self.next = (self.next + 1) % RECENT;
        }
    }
}

/// The largest scratch buffer kept between blocks: enough for any ordinary header value, so that one huge
/// value does not pin its size for the rest of the connection.
const MAX_KEPT_SCRATCH: usize = 16 * 1024;

/// Decodes the header blocks one peer sends on one connection, keeping its dynamic table in step.
#[derive(Debug)]
pub struct Decoder {
    table: DynamicTable,
    /// The largest dynamic table size update the peer may ask for.
    max_table_size: usize,
    /// Where Huffman-coded strings are decoded, kept between strings for its allocation.
    scratch: Vec<u8>,
    recent: Recent,
}

impl Decoder {
    /// `max_table_size`: the SETTINGS_HEADER_TABLE_SIZE this endpoint advertised (4096 by default): the
    /// largest dynamic table size update the peer may ask for, and the table's size until it asks.
    pub fn new(max_table_size: usize) -> Self {
        Decoder {
            table: DynamicTable::new(max_table_size),
            max_table_size,
            scratch: Vec::new(),
            recent: Recent::default(),
        }
    }

    /// Decodes one complete header block (HEADERS plus any CONTINUATION payloads, already joined), calling
    /// `field` for each field in order. `max_list_size`: the SETTINGS_MAX_HEADER_LIST_SIZE (RFC 9113 §6.5.2;
    /// each field counts name length + value length + 32). Once the running total exceeds it, `field` is no
    /// longer called but the block is still decoded to its end so that the dynamic table stays in step with the
    /// peer's, and the result is `Ok(ListSize::TooLarge)`.
    pub fn decode(
        &mut self,
        block: &Bytes,
        max_list_size: usize,
        mut field: impl FnMut(Field),
    ) -> Result<ListSize, DecodeError> {
        let mut pos = 0;
        let mut list_size = 0usize;
        let mut size_updates = 0;
        let mut seen_field = false;
        while let Some(&first) = block.get(pos) {
            let (decoded, size) = if first & 0x80 != 0 {
                // Indexed field (§6.1): only cloned if it is to be handed out.
                let (entry, size) = self.table.get(integer::decode(block, &mut pos, 7)?)?;
                list_size = list_size.saturating_add(size);
                seen_field = true;
                if list_size <= max_list_size {
                    field(entry.clone());
                }
                continue;
            } else if first & 0x40 != 0 {
                // Literal with incremental indexing (§6.2.1).
                let decoded = self.remembered(block, &mut pos, 6)?;
                let size = decoded.hpack_size();
                self.table.insert(decoded.clone(), size);
                (decoded, size)
            } else if first & 0x20 != 0 {
                // Dynamic table size update (§6.3), only at the start of a block (§4.2).
                if seen_field {
                    return Err(DecodeError::SizeUpdateNotAtStart);
                }
                size_updates += 1;
                if size_updates > 2 {
                    return Err(DecodeError::TooManySizeUpdates);
                }
                let size = integer::decode(block, &mut pos, 5)?;
                if size > self.max_table_size {
                    return Err(DecodeError::SizeUpdateTooLarge);
                }
                self.table.set_max_size(size);
                continue;
            } else if first & 0x10 != 0 {
                // Literal never indexed (§6.2.3).
                let decoded = self.literal(block, &mut pos, 4, true)?;
                let size = decoded.hpack_size();
                (decoded, size)
            } else {
                // Literal without indexing (§6.2.2).
                let decoded = self.remembered(block, &mut pos, 4)?;
                let size = decoded.hpack_size();
                (decoded, size)
            };
            list_size = list_size.saturating_add(size);
            seen_field = true;
            if list_size <= max_list_size {
                field(decoded);
            }
        }
        if self.scratch.capacity() > MAX_KEPT_SCRATCH {
            self.scratch = Vec::new();
        }
        Ok(if list_size <= max_list_size { ListSize::Within } else { ListSize::TooLarge })
    }

    /// A literal whose name index has a `prefix_bits`-bit prefix, not never-indexed: remembered when its
    /// meaning is fixed (see the module's doc).
    fn remembered(&mut self, block: &Bytes, pos: &mut usize, prefix_bits: u32) -> Result<Field, DecodeError> {
        let start = *pos;
        let (name_index, end) = representation(block, start, prefix_bits)?;
        let raw = &block[start..end];
        if let Some(field) = self.recent.get(raw) {
            *pos = end;
            return Ok(field.clone());
        }
        let field = self.literal(block, pos, prefix_bits, false)?;
        if name_index <= STATIC_ENTRIES && raw.len() <= RECENT_MAX_LEN {
            self.recent.put(raw, &field);
        }
        Ok(field)
    }

    /// A literal field representation whose name index has a `prefix_bits`-bit prefix.
    fn literal(
        &mut self,
        block: &Bytes,
        pos: &mut usize,
        prefix_bits: u32,
        sensitive: bool,
    ) -> Result<Field, DecodeError> {
        let name = match integer::decode(block, pos, prefix_bits)? {
            0 => Name::parse(string(block, pos, &mut self.scratch)?),
            index => self.table.get(index)?.0.name(),
        };
        Ok(name.with_value(string(block, pos, &mut self.scratch)?, sensitive))
    }

    /// How many literals are remembered.
    #[cfg(test)]
    pub(crate) fn recent_len(&self) -> usize {
        self.recent.entries.len()
    }

    /// The dynamic table, for tests that compare it with the RFC's examples.
    #[cfg(test)]
    pub(crate) fn table(&self) -> &DynamicTable {
        &self.table
    }
}

/// A literal that starts at `start`: its name index (a `prefix_bits`-bit prefix; 0 for a literal name) and where
/// it ends, past its name when that index is 0 and its value (lengths only; nothing decoded).
fn representation(block: &[u8], start: usize, prefix_bits: u32) -> Result<(usize, usize), DecodeError> {
    let mut pos = start;
    let name_index = integer::decode(block, &mut pos, prefix_bits)?;
    for _ in 0..if name_index == 0 { 2 } else { 1 } {
        let len = integer::decode(block, &mut pos, 7)?;
        pos = pos.checked_add(len).filter(|&end| end <= block.len()).ok_or(DecodeError::Truncated)?;
    }
    Ok((name_index, pos))
}

/// A string literal (RFC 7541 §5.2): a slice of the block, or the decoding of a Huffman-coded one, decoded in
/// `scratch` and then copied out at its exact length (one allocation, sized once).
fn string(block: &Bytes, pos: &mut usize, scratch: &mut Vec<u8>) -> Result<Bytes, DecodeError> {
    let huffman = block.get(*pos).is_some_and(|&first| first & 0x80 != 0);
    let len = integer::decode(block, pos, 7)?;
    let start = *pos;
    let end = start.checked_add(len).filter(|&end| end <= block.len()).ok_or(DecodeError::Truncated)?;
    *pos = end;
    if !huffman {
        return Ok(block.slice(start..end));
    }
    Ok(Bytes::copy_from_slice(huffman::decode(block.get(start..end).unwrap_or_default(), scratch)?))
}
