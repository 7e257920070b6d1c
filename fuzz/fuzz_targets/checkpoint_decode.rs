//! A checkpoint as read back from a file or a `bytea` column: the
//! `TRBCKPT1` container (header length, JSON header, state lengths, CRC),
//! then each transform's state in the host's `TRBSTAT1` format (or a
//! `TRBDELT1` changelog over the state before), as a restart restores it.
//!
//! Each input is decoded twice: as given (almost always a checksum
//! mismatch) and with its last four bytes replaced by the right CRC, so the
//! fuzzer gets past the checksum to the header and the state. Whatever
//! decodes must encode back to the same checkpoint, and every state that
//! restores must snapshot and restore to the same entries.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tributary_checkpoint::{decode, encode};
use tributary_wasm_host::state::KeyedState;

fn check(bytes: &[u8]) {
    let Ok(checkpoint) = decode(bytes, "fuzz") else {
        return;
    };
    let again = decode(&encode(&checkpoint), "fuzz").expect("an encoded checkpoint decodes");
    assert_eq!(again, checkpoint);
    for t in &checkpoint.transforms {
        if let Ok(state) = KeyedState::restore(&t.state) {
            let snapshot = state.snapshot();
            let restored = KeyedState::restore(&snapshot).expect("a snapshot restores");
            assert_eq!(restored.snapshot(), snapshot);
            assert_eq!(restored.len(), state.len());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    if data.len() >= 16 {
        let (body, _) = data.split_at(data.len() - 4);
        let mut fixed = body.to_vec();
        fixed.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
        check(&fixed);
    }
    // The transform state format on its own (it is also what a checkpoint's
    // state bytes hold).
    if let Ok(state) = KeyedState::restore(data) {
        snapshot_round_trips(&state);
    }
    // A changelog replayed over an empty state: what it leaves snapshots and
    // restores to the same entries.
    let mut state = KeyedState::default();
    if state.apply_changelog(data).is_ok() {
        snapshot_round_trips(&state);
    }
});

/// `state`'s snapshot restores to a state with the same snapshot.
fn snapshot_round_trips(state: &KeyedState) {
    let snapshot = state.snapshot();
    assert_eq!(
        KeyedState::restore(&snapshot)
            .expect("a snapshot restores")
            .snapshot(),
        snapshot
    );
}
