//! HPACK decoding (`waygate_h2wire::hpack`): any bytes, cut into a sequence of header blocks decoded by one
//! decoder (so the dynamic table carries over, and size updates, evictions and the list-size limit meet), give
//! fields or an error, never a panic. The first byte sets the block size (0: the whole input as one block),
//! whether the list-size limit is small and whether the table is 256 or 4096 octets. Every valid field decoded
//! (pseudo-header or regular) re-encodes with the gateway's encoder and decodes, with a fresh decoder, to the
//! same field, sensitivity included.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use waygate_h2wire::hpack::{Decoder, Encoder, Field};

fuzz_target!(|data: &[u8]| {
    let Some((&control, input)) = data.split_first() else { return };
    let block_size = match control & 0x3f {
        0 => usize::MAX,
        size => usize::from(size),
    };
    let max_list_size = if control & 0x40 != 0 { 128 } else { usize::MAX };
    let input = Bytes::copy_from_slice(input);
    let mut decoder = Decoder::new(if control & 0x80 != 0 { 256 } else { 4096 });
    let mut encoder = Encoder::new();
    let mut start = 0;
    while start < input.len() {
        let end = start.saturating_add(block_size).min(input.len());
        let block = input.slice(start..end);
        start = end;
        let mut fields = Vec::new();
        if decoder.decode(&block, max_list_size, |field| fields.push(field)).is_err() {
            // A connection error: nothing after it would be decoded.
            return;
        }
        for field in fields {
            check_round_trip(&mut encoder, field);
        }
    }
});

fn check_round_trip(encoder: &mut Encoder, field: Field) {
    let mut block = BytesMut::new();
    match &field {
        Field::Pseudo(pseudo, value) => encoder.pseudo(*pseudo, value, &mut block),
        Field::Header(name, value) => encoder.field(name, value, &mut block),
        Field::Invalid { .. } => return,
    }
    let mut again = Vec::new();
    let result = Decoder::new(4096).decode(&block.freeze(), usize::MAX, |field| again.push(field));
    assert!(result.is_ok(), "{field:?} re-encoded does not decode: {result:?}");
    assert_eq!(again, [field.clone()], "{field:?} does not survive a round trip");
    if let (Field::Header(_, value), [Field::Header(_, decoded)]) = (&field, &again[..]) {
        assert_eq!(value.is_sensitive(), decoded.is_sensitive(), "{field:?} changes sensitivity");
    }
}
