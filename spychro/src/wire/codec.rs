//! The one place that names the serde format: MessagePack (`rmp-serde`), compact (structs as
//! arrays) and self-describing, so `untagged` enums, `flatten` and `serde_json::Value` work,
//! and a custom error's message survives to the caller.

use serde::{Serialize, de::DeserializeOwned};

/// Appends `value`'s encoding to `buf`; on failure `buf` is left as it was.
pub(crate) fn encode_into<T: Serialize + ?Sized>(
    buf: &mut Vec<u8>,
    value: &T,
) -> Result<(), String> {
    let at = buf.len();
    rmp_serde::encode::write(buf, value).map_err(|e| {
        buf.truncate(at);
        e.to_string()
    })
}

/// Encodes `value` into a new buffer.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    encode_into(&mut buf, value)?;
    Ok(buf)
}

/// Decodes a value that must fill `bytes` exactly.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let mut rest = bytes;
    let value =
        T::deserialize(&mut rmp_serde::Deserializer::new(&mut rest)).map_err(|e| e.to_string())?;
    let rest = rest.len();
    if rest != 0 {
        return Err(format!("{rest} bytes are left over after the value"));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_messages_survive() {
        struct Refuses;
        impl Serialize for Refuses {
            fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(serde::ser::Error::custom("not today"))
            }
        }
        let mut buf = vec![1, 2];
        assert!(
            encode_into(&mut buf, &Refuses)
                .unwrap_err()
                .contains("not today")
        );
        assert_eq!(buf, [1, 2]);
        assert!(decode::<u8>(&encode(&300u32).unwrap()).is_err());
        assert!(decode::<u8>(&[1, 2]).unwrap_err().contains("left over"));
    }
}
