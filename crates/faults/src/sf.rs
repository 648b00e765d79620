//! The slice of RFC 8941 (Structured Field Values) that `Proxy-Status` needs: writing sf-strings and
//! checking tokens and keys when the header is built, and a strict list parser so tests, the doctor and
//! [`crate::parse_proxy_status_cause`] can read a header back (including other proxies' members).
//!
//! The parser follows RFC 8941 §4.2 and rejects anything it does not accept; it never panics.

/// A bare item (RFC 8941 §3.3). Decimals and byte sequences are kept as their text: nothing here needs
/// their values, only their validity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BareItem {
    Integer(i64),
    Decimal(String),
    String(String),
    Token(String),
    ByteSequence(String),
    Boolean(bool),
}

/// Parameters in order, each key once (a later duplicate replaces the earlier value, as §4.2.3.2 says).
pub type Parameters = Vec<(String, BareItem)>;

/// An item with its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub bare: BareItem,
    pub params: Parameters,
}

impl Item {
    /// The value of parameter `key`, if present.
    pub fn param(&self, key: &str) -> Option<&BareItem> {
        self.params.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

/// A list member: an item or an inner list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Member {
    Item(Item),
    InnerList(Vec<Item>, Parameters),
}

/// Whether `s` is a valid sf-token: `(ALPHA / "*") *(tchar / ":" / "/")`.
pub fn is_token(s: &str) -> bool {
    let b = s.as_bytes();
    matches!(b.first(), Some(c) if c.is_ascii_alphabetic() || *c == b'*')
        && b.iter().all(|&c| is_tchar(c) || c == b':' || c == b'/')
}

/// Whether `s` is a valid key: `(lcalpha / "*") *(lcalpha / DIGIT / "_" / "-" / "." / "*")`.
pub fn is_key(s: &str) -> bool {
    let b = s.as_bytes();
    matches!(b.first(), Some(c) if c.is_ascii_lowercase() || *c == b'*') && b.iter().all(|&c| is_key_char(c))
}

/// Appends `s` as an sf-string. sf-strings hold only printable ASCII, so any other character becomes `?`
/// (lossy on purpose: a header must never fail to serialize over a detail message).
pub fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.push('?'),
        }
    }
    out.push('"');
}

/// Parses a whole field value as an sf-list (§4.2.1). `None` when it is not valid.
pub fn parse_list(input: &str) -> Option<Vec<Member>> {
    let mut p = Parser { s: input.as_bytes(), i: 0 };
    p.skip_sp();
    let mut members = Vec::new();
    while !p.done() {
        members.push(p.member()?);
        p.skip_ows();
        if p.done() {
            return Some(members);
        }
        p.expect(b',')?;
        p.skip_ows();
        if p.done() {
            return None; // trailing comma
        }
    }
    Some(members)
}

/// Parses a whole field value as an sf-item (§4.2.3). `None` when it is not valid.
pub fn parse_item(input: &str) -> Option<Item> {
    let mut p = Parser { s: input.as_bytes(), i: 0 };
    p.skip_sp();
    let item = p.item()?;
    p.skip_sp();
    p.done().then_some(item)
}

fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

fn is_key_char(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || b"_-.*".contains(&c)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn done(&self) -> bool {
        self.i >= self.s.len()
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    fn expect(&mut self, c: u8) -> Option<()> {
        (self.bump()? == c).then_some(())
    }

    fn skip_sp(&mut self) {
        while self.peek() == Some(b' ') {
            self.i += 1;
        }
    }

    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    fn member(&mut self) -> Option<Member> {
        if self.peek() == Some(b'(') { self.inner_list() } else { self.item().map(Member::Item) }
    }

    fn inner_list(&mut self) -> Option<Member> {
        self.expect(b'(')?;
        let mut items = Vec::new();
        loop {
            self.skip_sp();
            if self.peek() == Some(b')') {
                self.i += 1;
                return Some(Member::InnerList(items, self.params()?));
            }
            items.push(self.item()?);
            if !matches!(self.peek(), Some(b' ' | b')')) {
                return None;
            }
        }
    }

    fn item(&mut self) -> Option<Item> {
        let bare = self.bare()?;
        let params = self.params()?;
        Some(Item { bare, params })
    }

    fn params(&mut self) -> Option<Parameters> {
        let mut params: Parameters = Vec::new();
        while self.peek() == Some(b';') {
            self.i += 1;
            self.skip_sp();
            let key = self.key()?;
            let value = if self.peek() == Some(b'=') {
                self.i += 1;
                self.bare()?
            } else {
                BareItem::Boolean(true)
            };
            match params.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = value,
                None => params.push((key, value)),
            }
        }
        Some(params)
    }

    fn key(&mut self) -> Option<String> {
        let start = self.i;
        match self.peek() {
            Some(c) if c.is_ascii_lowercase() || c == b'*' => self.i += 1,
            _ => return None,
        }
        while self.peek().is_some_and(is_key_char) {
            self.i += 1;
        }
        Some(self.text(start))
    }

    fn text(&self, start: usize) -> String {
        String::from_utf8_lossy(self.s.get(start..self.i).unwrap_or_default()).into_owned()
    }

    fn bare(&mut self) -> Option<BareItem> {
        match self.peek()? {
            b'-' | b'0'..=b'9' => self.number(),
            b'"' => self.string(),
            b':' => self.bytes(),
            b'?' => self.boolean(),
            c if c.is_ascii_alphabetic() || c == b'*' => Some(self.token()),
            _ => None,
        }
    }

    /// §4.2.4: at most 15 integer digits, or 12 before and 1-3 after a decimal point.
    fn number(&mut self) -> Option<BareItem> {
        let start = self.i;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.i += 1;
        }
        let digits_start = self.i;
        let mut dot = None;
        while let Some(c) = self.peek() {
            if c.is_ascii_digit() {
                self.i += 1;
            } else if c == b'.' && dot.is_none() {
                dot = Some(self.i);
                self.i += 1;
            } else {
                break;
            }
        }
        let text = self.text(digits_start);
        match dot {
            None => {
                if text.is_empty() || text.len() > 15 {
                    return None;
                }
                let n: i64 = text.parse().ok()?;
                Some(BareItem::Integer(if negative { -n } else { n }))
            }
            Some(at) => {
                let int_len = at - digits_start;
                let frac_len = self.i - at - 1;
                if int_len == 0 || int_len > 12 || !(1..=3).contains(&frac_len) {
                    return None;
                }
                Some(BareItem::Decimal(self.text(start)))
            }
        }
    }

    fn string(&mut self) -> Option<BareItem> {
        self.expect(b'"')?;
        let mut out = String::new();
        loop {
            match self.bump()? {
                b'\\' => match self.bump()? {
                    c @ (b'"' | b'\\') => out.push(char::from(c)),
                    _ => return None,
                },
                b'"' => return Some(BareItem::String(out)),
                c @ b' '..=b'~' => out.push(char::from(c)),
                _ => return None,
            }
        }
    }

    fn token(&mut self) -> BareItem {
        let start = self.i;
        self.i += 1;
        while self.peek().is_some_and(|c| is_tchar(c) || c == b':' || c == b'/') {
            self.i += 1;
        }
        BareItem::Token(self.text(start))
    }

    fn bytes(&mut self) -> Option<BareItem> {
        self.expect(b':')?;
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_alphanumeric() || b"+/=".contains(&c)) {
            self.i += 1;
        }
        let text = self.text(start);
        self.expect(b':')?;
        Some(BareItem::ByteSequence(text))
    }

    fn boolean(&mut self) -> Option<BareItem> {
        self.expect(b'?')?;
        match self.bump()? {
            b'1' => Some(BareItem::Boolean(true)),
            b'0' => Some(BareItem::Boolean(false)),
            _ => None,
        }
    }
}
