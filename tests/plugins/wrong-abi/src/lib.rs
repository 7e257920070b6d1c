//! A test plugin built for a plugin ABI this tributary does not speak: the
//! host must refuse it after asking its version, before reading anything else.

// A test fixture that misbehaves on purpose, below the safe API.
#![allow(unsafe_code)]

/// Says version 2; this tributary loads version 1.
#[unsafe(no_mangle)]
pub extern "C" fn tributary_plugin_abi_version() -> u32 {
    2
}
