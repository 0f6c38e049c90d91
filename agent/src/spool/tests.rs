use super::*;
use bfp_common::wire::{Record, RecordKind};
use bfp_common::{Fingerprint, Protocol};
use std::path::Path;

fn record(i: u32) -> Record {
    Record {
        kind: RecordKind::Session,
        source_ip: Some("192.0.2.1".into()),
        user: Some(format!("user{i}")),
        start: i64::from(i),
        end: None,
        fingerprint: Fingerprint {
            login_hour: 1,
            session_duration_min: 2.0,
            commands: 0,
            failed_logins: i,
            protocol: Protocol::Ssh,
            typing_speed_wpm: None,
            risky_commands: None,
        },
        commands: vec!["x".repeat(100)],
        suspicious: false,
        confidence: 0.9,
        reasons: vec![],
        evidence: None,
    }
}

fn users(records: &[Record]) -> Vec<u32> {
    records.iter().map(|r| r.fingerprint.failed_logins).collect()
}

fn open(dir: &Path, max: u64, mark: Option<Pos>) -> Spool {
    let mut config = SpoolConfig::new(dir, max);
    config.segment_bytes = 1024;
    let mut s = Spool::open(config).unwrap();
    s.recover(mark).unwrap();
    s
}

/// Writes records `range`, commits and checkpoints them.
fn write(s: &mut Spool, range: std::ops::Range<u32>) -> Pos {
    for i in range {
        s.append(&record(i)).unwrap();
    }
    let mark = s.commit().unwrap();
    s.checkpointed(mark);
    mark
}

fn deliver(s: &mut Spool, max: usize) -> Vec<u32> {
    let (records, end) = s.peek(max).unwrap();
    let n = records.len() as u64;
    s.begin(n, end, |seq| Ok(seq.to_le_bytes().to_vec())).unwrap();
    s.ack().unwrap();
    users(&records)
}

#[test]
fn records_go_out_in_order_once_and_acknowledged_segments_are_deleted() {
    let dir = crate::testutil::tempdir("spool-order");
    let mut s = open(&dir, 1 << 20, None);
    write(&mut s, 0..30);
    assert_eq!(s.depth(), 30);
    assert!(s.bytes() > 3 * 1024, "several segments");
    assert_eq!(deliver(&mut s, 20), (0..20).collect::<Vec<_>>());
    assert_eq!(deliver(&mut s, 20), (20..30).collect::<Vec<_>>());
    assert_eq!(deliver(&mut s, 20), Vec::<u32>::new());
    assert_eq!(s.depth(), 0);
    assert!(s.bytes() < 2048, "read segments removed, {} bytes left", s.bytes());
    assert_eq!(s.meta.next_seq, 4);
}

#[test]
fn only_checkpointed_records_are_sent_and_a_restart_cuts_back_to_the_mark() {
    let dir = crate::testutil::tempdir("spool-mark");
    let mut s = open(&dir, 1 << 20, None);
    let mark = write(&mut s, 0..5);
    for i in 5..9 {
        s.append(&record(i)).unwrap();
    }
    s.commit().unwrap();
    // Committed but the checkpoint was not saved (killed here).
    let (seen, _) = s.peek(100).unwrap();
    assert_eq!(users(&seen), vec![0, 1, 2, 3, 4]);
    drop(s);
    let mut s = open(&dir, 1 << 20, Some(mark));
    assert_eq!(s.depth(), 5);
    write(&mut s, 5..7);
    assert_eq!(deliver(&mut s, 100), vec![0, 1, 2, 3, 4, 5, 6]);
}

#[test]
fn a_batch_in_flight_survives_a_restart_byte_for_byte() {
    let dir = crate::testutil::tempdir("spool-inflight");
    let mut s = open(&dir, 1 << 20, None);
    let mark = write(&mut s, 0..4);
    let (records, end) = s.peek(3).unwrap();
    let sent = s.begin(3, end, |seq| Ok(format!("batch {seq} of {}", records.len()).into_bytes())).unwrap();
    drop(s);
    let mut s = open(&dir, 1 << 20, Some(mark));
    assert_eq!(s.inflight().unwrap(), Some(sent));
    assert_eq!(s.depth(), 4);
    // Records after the batch are not sent twice.
    assert_eq!(users(&s.peek(10).unwrap().0), vec![3]);
    s.ack().unwrap();
    assert_eq!(s.inflight().unwrap(), None);
    assert_eq!(deliver(&mut s, 10), vec![3]);
    assert_eq!(s.meta.next_seq, 3);
}

#[test]
fn the_cap_drops_the_oldest_and_counts_them_persistently() {
    let dir = crate::testutil::tempdir("spool-cap");
    let mut s = open(&dir, 4096, None);
    let mut mark = Pos::default();
    for chunk in 0..20 {
        mark = write(&mut s, chunk * 10..chunk * 10 + 10);
        assert!(s.bytes() <= 4096 + 1024, "{} bytes", s.bytes());
    }
    let dropped = s.dropped();
    assert!(dropped > 100, "dropped {dropped}");
    assert_eq!(s.depth() + dropped, 200);
    let kept = {
        let (r, _) = s.peek(1000).unwrap();
        users(&r)
    };
    assert_eq!(kept.len() as u64, s.depth());
    // The newest survive, in order.
    assert_eq!(kept, ((200 - kept.len() as u32)..200).collect::<Vec<_>>());
    drop(s);
    let s = open(&dir, 4096, Some(mark));
    assert_eq!(s.dropped(), dropped);
    assert_eq!(s.depth(), kept.len() as u64);
}

#[test]
fn a_torn_or_corrupt_frame_is_skipped_and_counted_not_fatal() {
    let dir = crate::testutil::tempdir("spool-torn");
    let mut s = open(&dir, 1 << 20, None);
    let mark = write(&mut s, 0..3);
    drop(s);
    // Flip a byte in the middle record's payload.
    let seg = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "seg"))
        .unwrap();
    let mut bytes = fs::read(&seg).unwrap();
    let frame = bytes.len() / 3;
    bytes[frame + 20] ^= 0xff;
    fs::write(&seg, &bytes).unwrap();
    let mut s = open(&dir, 1 << 20, Some(mark));
    // The bad frame ends its segment: record 0 survives, 1 and 2 are lost.
    assert_eq!(deliver(&mut s, 10), vec![0]);
    assert_eq!(deliver(&mut s, 10), Vec::<u32>::new());
    assert_eq!(s.dropped(), 1);
    assert_eq!(deliver(&mut s, 10), Vec::<u32>::new());
    assert_eq!(s.dropped(), 1, "counted once");
    // A torn tail past the mark (a write cut short) is cut back on recovery.
    let mark = write(&mut s, 10..12);
    drop(s);
    let last = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .max()
        .unwrap();
    let mut f = OpenOptions::new().append(true).open(&last).unwrap();
    f.write_all(&[200, 0, 0, 0, 1, 2]).unwrap();
    drop(f);
    let mut s = open(&dir, 1 << 20, Some(mark));
    assert_eq!(deliver(&mut s, 10), vec![10, 11]);
    write(&mut s, 12..13);
    assert_eq!(deliver(&mut s, 10), vec![12]);
}
