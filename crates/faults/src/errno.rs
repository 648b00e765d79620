//! The Linux errno values the classifier recognises, as plain numbers so this crate needs no `libc`.
//! The data plane passes `io::Error::raw_os_error()` through unchanged; on other systems the numbers
//! differ, so [`crate::Evidence::os_errno`] is only read on Linux and the `io::ErrorKind` is used elsewhere.

/// `ENOMEM`: the kernel could not allocate memory for the socket (Linux 12).
pub const ENOMEM: i32 = 12;
/// `ENFILE`: the system-wide open file table is full (`fs.file-max`) (Linux 23).
pub const ENFILE: i32 = 23;
/// `EMFILE`: this process reached its descriptor limit (`RLIMIT_NOFILE`) (Linux 24).
pub const EMFILE: i32 = 24;
/// `EPIPE`: write to a connection the peer already reset (Linux 32).
pub const EPIPE: i32 = 32;
/// `ENETUNREACH`: no route to the network, or ICMP net unreachable (Linux 101).
pub const ENETUNREACH: i32 = 101;
/// `EADDRNOTAVAIL`: on connect, no free ephemeral port towards that address (Linux 99).
pub const EADDRNOTAVAIL: i32 = 99;
/// `ECONNABORTED`: the connection was aborted locally after a reset (Linux 103).
pub const ECONNABORTED: i32 = 103;
/// `ECONNRESET`: the peer sent RST (Linux 104).
pub const ECONNRESET: i32 = 104;
/// `ENOBUFS`: no socket buffer space (Linux 105).
pub const ENOBUFS: i32 = 105;
/// `ETIMEDOUT`: the kernel gave up (SYN or data retransmissions unanswered) (Linux 110).
pub const ETIMEDOUT: i32 = 110;
/// `ECONNREFUSED`: RST in reply to SYN (Linux 111).
pub const ECONNREFUSED: i32 = 111;
/// `EHOSTUNREACH`: ICMP host unreachable, or no ARP reply (Linux 113).
pub const EHOSTUNREACH: i32 = 113;

/// The errnos that mean the gateway's own host ran out of something (descriptors, memory, buffers, ports):
/// they name GatewayResourceExhausted, whatever the phase, and never blame a target.
pub const LOCAL_EXHAUSTION: &[i32] = &[EMFILE, ENFILE, ENOBUFS, ENOMEM, EADDRNOTAVAIL];

/// The symbolic name of an errno this module knows, for log lines and evidence (`errno=EMFILE`).
pub const fn name(errno: i32) -> Option<&'static str> {
    Some(match errno {
        ENOMEM => "ENOMEM",
        ENFILE => "ENFILE",
        EMFILE => "EMFILE",
        EPIPE => "EPIPE",
        EADDRNOTAVAIL => "EADDRNOTAVAIL",
        ENETUNREACH => "ENETUNREACH",
        ECONNABORTED => "ECONNABORTED",
        ECONNRESET => "ECONNRESET",
        ENOBUFS => "ENOBUFS",
        ETIMEDOUT => "ETIMEDOUT",
        ECONNREFUSED => "ECONNREFUSED",
        EHOSTUNREACH => "EHOSTUNREACH",
        _ => return None,
    })
}
