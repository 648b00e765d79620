//! The Linux errno values the classifier recognises, as plain numbers so this crate needs no `libc`.
//! The data plane passes `io::Error::raw_os_error()` through unchanged; on other systems the numbers
//! differ, so [`crate::Evidence::os_errno`] is only read on Linux and the `io::ErrorKind` is used elsewhere.

/// `EPIPE`: write to a connection the peer already reset (Linux 32).
pub const EPIPE: i32 = 32;
/// `ENETUNREACH`: no route to the network, or ICMP net unreachable (Linux 101).
pub const ENETUNREACH: i32 = 101;
/// `ECONNABORTED`: the connection was aborted locally after a reset (Linux 103).
pub const ECONNABORTED: i32 = 103;
/// `ECONNRESET`: the peer sent RST (Linux 104).
pub const ECONNRESET: i32 = 104;
/// `ETIMEDOUT`: the kernel gave up (SYN or data retransmissions unanswered) (Linux 110).
pub const ETIMEDOUT: i32 = 110;
/// `ECONNREFUSED`: RST in reply to SYN (Linux 111).
pub const ECONNREFUSED: i32 = 111;
/// `EHOSTUNREACH`: ICMP host unreachable, or no ARP reply (Linux 113).
pub const EHOSTUNREACH: i32 = 113;
