//! The per-worker flow table, TCP tracking, idle expiry and the recently-expired record.
