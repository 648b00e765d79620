//! Files: plain and gzip (by content, not name), directories recursively, corrupt gzip and malformed lines
//! reported with file and line, lines numbered correctly across chunk boundaries.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

use common::{L, alb_log, at, tempdir};
use flate2::Compression;
use flate2::write::GzEncoder;
use waygate_doctor::{AnalyzeError, Options, analyze};

fn lines(n: usize, offset: f64) -> Vec<L> {
    (0..n)
        .map(|i| {
            let l = L::ok(at(offset + i as f64), &format!("10.9.0.{}:80", i % 4));
            if i % 10 == 0 { l.status(502, None).times(["-1", "-1", "-1"]) } else { l }
        })
        .collect()
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn write(path: &Path, data: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
}

fn opts(threads: usize) -> Options {
    Options { threads: Some(threads), ..Options::default() }
}

#[test]
fn directories_plain_and_gzip() {
    let d = tempdir("dirs");
    write(&d.join("a.log"), alb_log(&lines(100, 0.0)).as_bytes());
    write(&d.join("2024/05/01/b.log.gz"), &gz(alb_log(&lines(200, 1000.0)).as_bytes()));
    // gzip content without a .gz name, and a .gz name on plain text: detected by the magic bytes.
    write(&d.join("2024/05/02/c.log"), &gz(alb_log(&lines(300, 2000.0)).as_bytes()));
    write(&d.join("2024/05/02/d.log.gz"), alb_log(&lines(50, 3000.0)).as_bytes());
    // Concatenated gzip members, as log shippers produce.
    let mut multi = gz(alb_log(&lines(10, 4000.0)).as_bytes());
    multi.extend(gz(alb_log(&lines(10, 5000.0)).as_bytes()));
    write(&d.join("2024/05/03/e.log.gz"), &multi);
    write(&d.join(".hidden/ignored.log"), alb_log(&lines(1000, 0.0)).as_bytes());
    write(&d.join("empty.log"), b"");
    for threads in [1, 4] {
        let r = analyze(std::slice::from_ref(&d), &opts(threads)).unwrap();
        assert_eq!(r.files, 6);
        assert_eq!(r.requests, 100 + 200 + 300 + 50 + 20);
        assert_eq!(r.malformed.count, 0);
        assert!(r.file_errors.is_empty(), "{:?}", r.file_errors);
        assert_eq!(r.elb_5xx.get("502"), Some(&(10 + 20 + 30 + 5 + 2)));
    }
    // Files and directories together; a file named twice is read twice (what the user asked for).
    let r = analyze(&[d.join("a.log"), d.join("2024/05/01")], &opts(2)).unwrap();
    assert_eq!(r.requests, 300);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn missing_path_is_a_user_error() {
    let err = analyze(&[PathBuf::from("/nonexistent/waygate-doctor")], &opts(1)).unwrap_err();
    assert!(matches!(err, AnalyzeError::Path(_)));
    assert!(err.to_string().contains("/nonexistent/waygate-doctor"));
}

#[test]
fn corrupt_gzip_is_reported_with_file_and_line() {
    let d = tempdir("corrupt");
    let text = alb_log(&lines(20_000, 0.0));
    let full = gz(text.as_bytes());
    // Truncated: the lines before the cut are analysed, the file and line where it stopped are reported.
    let truncated = d.join("truncated.log.gz");
    write(&truncated, &full[..full.len() / 2]);
    let r = analyze(std::slice::from_ref(&truncated), &opts(2)).unwrap();
    assert_eq!(r.file_errors.len(), 1, "{:?}", r.file_errors);
    let e = &r.file_errors[0];
    assert_eq!(e.file, truncated.display().to_string());
    assert!(r.requests > 0 && r.requests < 20_000, "{}", r.requests);
    assert_eq!(e.line, Some(r.requests + 1), "the first line not read");
    assert!(!e.error.is_empty());
    assert_eq!(r.malformed.count, 0, "the partial last line is dropped, not reported twice");

    // Bytes flipped mid-stream: the decompressor yields garbage before it notices (statuses like 577, a target
    // called "0.000"); none of this file's lines is counted, the error says so, and no garbage line shows up
    // as malformed either.
    let mut flipped = full.clone();
    let mid = flipped.len() / 2;
    for b in &mut flipped[mid..mid + 64] {
        *b ^= 0x5a;
    }
    let bad = d.join("flipped.gz");
    write(&bad, &flipped);
    // A valid file beside it is still read in full.
    write(&d.join("good.log"), alb_log(&lines(10, 0.0)).as_bytes());
    let r = analyze(std::slice::from_ref(&d), &opts(2)).unwrap();
    assert!(
        r.file_errors.iter().any(|e| e.file == bad.display().to_string() && e.line.is_some()),
        "{:?}",
        r.file_errors
    );
    assert!(r.file_errors.iter().any(|e| e.file == truncated.display().to_string()));
    let flipped_error = r.file_errors.iter().find(|e| e.file == bad.display().to_string()).unwrap();
    assert!(flipped_error.error.contains("the gzip data is corrupt"), "{}", flipped_error.error);
    let only_good_and_truncated = analyze(std::slice::from_ref(&truncated), &opts(2)).unwrap().requests + 10;
    assert_eq!(r.requests, only_good_and_truncated, "nothing from the corrupt file");
    assert!(r.elb_5xx.keys().all(|s| s.as_str() < "600"), "{:?}", r.elb_5xx);
    let bad_name = bad.display().to_string();
    assert!(!r.malformed.by_file.contains_key(&bad_name), "{:?}", r.malformed.by_file);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn malformed_lines_with_file_and_line() {
    let d = tempdir("malformed");
    let good = alb_log(&lines(3, 0.0));
    let good: Vec<&str> = good.lines().collect();
    let text = format!(
        "{}\r\nhello world\n{}\n\n{{\"time\": \"2024-05-01T10:00:00Z\"}}\n{}\nhttp not-a-time x y z 0 0 0 200 200\n\
        http 2024-05-01T10:00:00Z a b c 0 0 0 200 200 1 2 \"GET / HTTP/1.1",
        good[0], good[1], good[2]
    );
    let f = d.join("mixed.log");
    write(&f, text.as_bytes());
    let r = analyze(std::slice::from_ref(&f), &opts(1)).unwrap();
    assert_eq!(r.requests, 3);
    assert_eq!(r.malformed.count, 4);
    let file = f.display().to_string();
    let got: Vec<(String, u64, String)> =
        r.malformed.examples.iter().map(|e| (e.file.clone(), e.line, e.reason.clone())).collect();
    assert_eq!(
        got,
        [
            (file.clone(), 2, "only 2 fields (need at least 10: type .. target_status_code)".to_owned()),
            (file.clone(), 5, "JSON object without `elb_status_code`".to_owned()),
            (file.clone(), 7, "time is not an ISO 8601 timestamp".to_owned()),
            (file.clone(), 8, "field 13 opens a quote that never closes".to_owned()),
        ]
    );
    assert_eq!(r.malformed.examples[0].text, "hello world");
    assert_eq!(r.malformed.by_file.get(&file), Some(&4));
    let term = waygate_doctor::term::render(&r);
    assert!(term.contains(&format!("{file}:2: only 2 fields")), "{term}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn line_numbers_across_chunks_and_threads() {
    // ~20 MB: several 4 MiB chunks, parsed out of order on 4 threads.
    let d = tempdir("chunks");
    let mut text = String::new();
    let mut bad = Vec::new();
    for (i, l) in lines(45_000, 0.0).iter().enumerate() {
        if i % 9_001 == 17 {
            text.push_str("garbage line\n");
            bad.push(i as u64 + 1);
        } else {
            text.push_str(&l.alb());
            text.push('\n');
        }
    }
    assert!(text.len() > 12 << 20);
    let f = d.join("big.log");
    write(&f, text.as_bytes());
    write(&d.join("big.log.gz"), &gz(text.as_bytes()));
    let r = analyze(std::slice::from_ref(&f), &Options { threads: Some(4), max_examples: 100, ..Options::default() })
        .unwrap();
    assert_eq!(r.requests, 45_000 - bad.len() as u64);
    let got: Vec<u64> = r.malformed.examples.iter().map(|e| e.line).collect();
    assert_eq!(got, bad);
    let r =
        analyze(&[d.join("big.log.gz")], &Options { threads: Some(3), max_examples: 2, ..Options::default() }).unwrap();
    assert_eq!(r.malformed.count, bad.len() as u64);
    assert_eq!(r.malformed.examples.iter().map(|e| e.line).collect::<Vec<_>>(), bad[..2]);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn binary_garbage_never_panics() {
    let d = tempdir("garbage");
    let mut data = Vec::new();
    let mut x: u32 = 12345;
    for _ in 0..200_000 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        data.push((x >> 16) as u8);
    }
    write(&d.join("random.bin"), &data);
    let mut gzbad = vec![0x1f, 0x8b];
    gzbad.extend_from_slice(&data[..1000]);
    write(&d.join("fake.gz"), &gzbad);
    let r = analyze(std::slice::from_ref(&d), &opts(2)).unwrap();
    assert_eq!(r.requests, 0);
    assert!(r.malformed.count > 0);
    assert_eq!(r.file_errors.len(), 1);
    assert_eq!(r.file_errors[0].line, Some(1));
    let _ = std::fs::remove_dir_all(&d);
}
