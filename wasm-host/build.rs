//! Builds the built-in transforms (`transforms/<name>/`) for
//! `wasm32-wasip2`, for `src/builtin.rs` to embed; how is in
//! `build/guests.rs`, shared with the tests' build script (which builds the
//! sandbox test guests: the production build does not).

#[path = "build/guests.rs"]
mod guests;

fn main() {
    guests::build_guests(&["transforms"], "TRIBUTARY_BUILTIN_DIR");
}
