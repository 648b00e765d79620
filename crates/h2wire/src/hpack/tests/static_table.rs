//! The static table against RFC 7541 Appendix A as printed, and the encoder's name index against the table.

use bytes::Bytes;

use super::{decode, text};
use crate::hpack::Decoder;
use crate::hpack::table::{STATIC, static_name_index};

/// Appendix A's rows, as the RFC prints them.
const APPENDIX_A: &str = "
| 1     | :authority                  |               |
| 2     | :method                     | GET           |
| 3     | :method                     | POST          |
| 4     | :path                       | /             |
| 5     | :path                       | /index.html   |
| 6     | :scheme                     | http          |
| 7     | :scheme                     | https         |
| 8     | :status                     | 200           |
| 9     | :status                     | 204           |
| 10    | :status                     | 206           |
| 11    | :status                     | 304           |
| 12    | :status                     | 400           |
| 13    | :status                     | 404           |
| 14    | :status                     | 500           |
| 15    | accept-charset              |               |
| 16    | accept-encoding             | gzip, deflate |
| 17    | accept-language             |               |
| 18    | accept-ranges               |               |
| 19    | accept                      |               |
| 20    | access-control-allow-origin |               |
| 21    | age                         |               |
| 22    | allow                       |               |
| 23    | authorization               |               |
| 24    | cache-control               |               |
| 25    | content-disposition         |               |
| 26    | content-encoding            |               |
| 27    | content-language            |               |
| 28    | content-length              |               |
| 29    | content-location            |               |
| 30    | content-range               |               |
| 31    | content-type                |               |
| 32    | cookie                      |               |
| 33    | date                        |               |
| 34    | etag                        |               |
| 35    | expect                      |               |
| 36    | expires                     |               |
| 37    | from                        |               |
| 38    | host                        |               |
| 39    | if-match                    |               |
| 40    | if-modified-since           |               |
| 41    | if-none-match               |               |
| 42    | if-range                    |               |
| 43    | if-unmodified-since         |               |
| 44    | last-modified               |               |
| 45    | link                        |               |
| 46    | location                    |               |
| 47    | max-forwards                |               |
| 48    | proxy-authenticate          |               |
| 49    | proxy-authorization         |               |
| 50    | range                       |               |
| 51    | referer                     |               |
| 52    | refresh                     |               |
| 53    | retry-after                 |               |
| 54    | server                      |               |
| 55    | set-cookie                  |               |
| 56    | strict-transport-security   |               |
| 57    | transfer-encoding           |               |
| 58    | user-agent                  |               |
| 59    | vary                        |               |
| 60    | via                         |               |
| 61    | www-authenticate            |               |
";

fn rows() -> Vec<(usize, String, String)> {
    APPENDIX_A
        .lines()
        .filter(|line| !line.is_empty())
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            (cells[1].parse().expect("index"), cells[2].to_owned(), cells[3].to_owned())
        })
        .collect()
}

#[test]
fn static_table_is_appendix_a() {
    let rows = rows();
    assert_eq!(rows.len(), STATIC.len());
    for ((index, name, value), (field, size)) in rows.into_iter().zip(&STATIC) {
        assert_eq!(text(field), (name.clone(), value.clone()), "index {index}");
        assert_eq!(*size, field.hpack_size(), "index {index}");
        // Each index decodes to its entry from a fresh decoder.
        let fields = decode(&mut Decoder::new(4096), &Bytes::from(vec![0x80 | index as u8]));
        assert_eq!(fields.iter().map(text).collect::<Vec<_>>(), [(name.clone(), value)], "index {index}");
        // The encoder's name index finds each regular name at its first index.
        let first = STATIC.iter().position(|(entry, _)| text(entry).0 == name).map(|i| i as u8 + 1);
        let expected = if name.starts_with(':') { None } else { first };
        assert_eq!(static_name_index(&name), expected, "{name}");
    }
    assert_eq!(static_name_index("x-custom"), None);
    assert_eq!(static_name_index("te"), None);
}
