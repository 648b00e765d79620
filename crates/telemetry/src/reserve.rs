//! Descriptors held back for the moment the process runs out of them. The data plane can take every descriptor
//! the process may open (EMFILE, or the system's ENFILE); the parts that must keep working then (the admin
//! listener's `/live` and `/metrics`, a log writer opening its next file) each hold a few open `/dev/null` files
//! and, when an open or accept fails for lack of descriptors, close one and try again at once in the slot it
//! freed. The slot is theirs unless another thread opens a descriptor within the same few microseconds; a
//! reserve that gave one up fills again as soon as descriptors come back ([`Reserve::refill`]).

use std::fs::File;
use std::io;
use std::sync::{Mutex, MutexGuard};

/// Linux's errno for "too many open files" (this process's limit) and "file table overflow" (the system's).
const EMFILE: i32 = 24;
const ENFILE: i32 = 23;

/// Whether an error means the process (or the system) is out of descriptors.
pub fn out_of_descriptors(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(EMFILE | ENFILE))
}

/// A few descriptors held as open `/dev/null` files until one is needed.
#[derive(Debug)]
pub struct Reserve {
    held: Mutex<Vec<File>>,
    size: usize,
}

impl Reserve {
    /// Opens `size` descriptors now (as many as the process can give).
    pub fn new(size: usize) -> Self {
        let reserve = Self { held: Mutex::new(Vec::with_capacity(size)), size };
        reserve.refill();
        reserve
    }

    fn held(&self) -> MutexGuard<'_, Vec<File>> {
        // A poisoned lock still holds valid files; nothing here can leave them inconsistent.
        self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Descriptors held now.
    pub fn len(&self) -> usize {
        self.held().len()
    }

    /// True when every descriptor was given up (and none could be opened again yet).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Closes one held descriptor so that the caller's next open or accept can have its slot; false when none
    /// is left.
    pub fn release_one(&self) -> bool {
        self.held().pop().is_some()
    }

    /// Opens descriptors until the reserve is whole again or the process has none to give.
    pub fn refill(&self) {
        let mut held = self.held();
        while held.len() < self.size {
            match File::open("/dev/null") {
                Ok(f) => held.push(f),
                Err(_) => return,
            }
        }
    }

    /// Runs `open`; if it fails for lack of descriptors, gives up one held descriptor and runs it once more.
    pub fn retry<T>(&self, mut open: impl FnMut() -> io::Result<T>) -> io::Result<T> {
        match open() {
            Err(e) if out_of_descriptors(&e) && self.release_one() => open(),
            other => other,
        }
    }
}
