//! Tests of [`super::SlowPath::handle`] end to end, with frames built by the wire builders and
//! checked with etherparse.
