//! O_DIRECT files on io_uring (owned by the storage work).
