//! Concatenated gzip members as `.apk` files and indexes hold them (`apk::gzip`): one
//! member with its exact range under the limit a reader would pick (`limit_for` with the
//! control limit), all member ranges, and the multi-member stream that package data is read
//! through (streamed to a sink, as installing does).
#![no_main]

use std::io::Read;

use executor::apk::gzip::{control_limit, limit_for, member_ranges, multi_member_reader, read_member};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(member) = read_member(data, 0, limit_for(data, 0, control_limit())) {
        assert!(member.range.start == 0 && member.range.end <= data.len(), "member range outside the input");
        let _ = read_member(data, member.range.end, limit_for(data, member.range.end, control_limit()));
    }
    if let Ok(ranges) = member_ranges(data) {
        let mut at = 0;
        for range in ranges {
            assert_eq!(range.start, at, "member ranges are not adjacent");
            at = range.end;
        }
        assert_eq!(at, data.len(), "member ranges do not cover the input");
    }
    let mut buf = [0u8; 64 * 1024];
    let mut reader = multi_member_reader(data);
    while let Ok(n) = reader.read(&mut buf) {
        if n == 0 {
            break;
        }
    }
});
