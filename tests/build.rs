//! Builds the sandbox test guests (`tests/guests/<name>/`) for
//! `wasm32-wasip2`, for the tests to load from disk (`harness::guest`); how
//! is in `wasm-host/build/guests.rs`, shared with the build of the built-in
//! transforms.

#[path = "../wasm-host/build/guests.rs"]
mod guests;

fn main() {
    guests::build_guests(&["tests/guests"], "TRIBUTARY_TEST_GUEST_DIR");
}
