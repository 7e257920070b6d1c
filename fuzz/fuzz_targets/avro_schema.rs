//! A writer schema from the Schema Registry (which Tributary does not
//! control) and a body written with it: the schema mapped to Arrow types
//! (recursion, depth, decimals, unions, names), the body decoded with it and
//! turned into a row, the batch finished.
//!
//! Input: the schema's JSON text, `SEP`, the Avro body.
#![no_main]

use apache_avro::Schema;
use libfuzzer_sys::fuzz_target;
use tributary_formats::DecodeError;
use tributary_formats::avro::AvroBatchBuilder;

const SEP: &[u8] = b"|TRIBSEP|";

fuzz_target!(|data: &[u8]| {
    let Some(at) = data.windows(SEP.len()).position(|w| w == SEP) else {
        return;
    };
    let (schema, body) = (&data[..at], &data[at + SEP.len()..]);
    let Ok(schema) = std::str::from_utf8(schema) else {
        return;
    };
    let Ok(schema) = Schema::parse_str(schema) else {
        return;
    };
    // The builder checks the schema before it decodes the body with it: a
    // schema that must contain itself, or nests thousands deep, once made
    // the decode overflow the stack.
    let mut avro = AvroBatchBuilder::for_decoded_values();
    let pushed = match avro.push_body(1, &schema, body) {
        Ok(()) => true,
        Err(DecodeError::Bad(_)) => false,
        Err(DecodeError::Unavailable(e)) => panic!("a body was unavailable: {e}"),
    };
    // The same body again: a cached writer schema must give the same answer.
    let again = avro.push_body(1, &schema, body).is_ok();
    assert_eq!(
        pushed, again,
        "the same body was accepted once and refused once"
    );
    let batch = avro.finish().expect("accepted rows always make a batch");
    assert_eq!(batch.num_rows(), if pushed { 2 } else { 0 });
});
