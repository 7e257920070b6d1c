//! The Confluent wire format of a Schema Registry serializer's value:
//! `0x00` (the magic byte), the writer schema's id (4 bytes, big-endian),
//! then the body (Avro binary).
//!
//! ```
//! use tributary_formats::confluent;
//! let mut value = confluent::header(42).to_vec();
//! value.extend_from_slice(b"avro body");
//! assert_eq!(confluent::schema_id(&value).unwrap(), 42);
//! assert!(confluent::schema_id(b"{}").is_err());
//! ```

use crate::error::DecodeError;

/// The five bytes before the body of a value written with schema `id`.
pub fn header(id: u32) -> [u8; 5] {
    let [a, b, c, d] = id.to_be_bytes();
    [0, a, b, c, d]
}

/// The schema id of a Confluent-framed value, or why it is not one.
pub fn schema_id(payload: &[u8]) -> Result<u32, DecodeError> {
    match payload {
        [0, a, b, c, d, ..] => Ok(u32::from_be_bytes([*a, *b, *c, *d])),
        [] => Err(DecodeError::Bad(
            "empty value: expected the Confluent wire format (0x00, a 4-byte schema id, Avro)"
                .into(),
        )),
        [0, ..] => Err(DecodeError::Bad(format!(
            "value of {} bytes is too short for the Confluent wire format (0x00, a 4-byte \
             schema id, Avro)",
            payload.len()
        ))),
        [first, ..] => Err(DecodeError::Bad(format!(
            "first byte is {first:#04x}, not the Confluent magic byte 0x00: the value was not \
             written with a Schema Registry Avro serializer"
        ))),
    }
}
