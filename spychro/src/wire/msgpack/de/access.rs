//! The accessors serde reads compound values through: a struct's fields, an array's elements,
//! a map's entries, an enum's variant.

use serde::de::{self, DeserializeSeed, Visitor};

use super::*;

/// Whose fields an array holds, for messages.
#[derive(Clone, Copy)]
pub(super) enum Owner {
    /// A struct, by name.
    Struct(&'static str),
    /// A struct variant: its enum's name, and where the variant's name is in the bytes.
    Variant { name: &'static str, at: usize },
}

/// The fields of a struct, in an array (see [`Deserializer::fields`]).
pub(super) struct Fields<'a, 'de> {
    pub(super) de: &'a mut Deserializer<'de>,
    /// The fields not read yet; [`FIELDS`] once the struct asked for one past the end.
    pub(super) left: usize,
}

impl<'de> de::SeqAccess<'de> for Fields<'_, 'de> {
    type Error = Error;

    #[inline]
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        if self.left == 0 {
            self.left = FIELDS;
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(&mut *self.de).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left.min(self.de.bytes.len() - self.de.pos))
    }
}

/// The elements of an array.
pub(super) struct Elements<'a, 'de> {
    pub(super) de: &'a mut Deserializer<'de>,
    pub(super) left: usize,
}

impl<'de> de::SeqAccess<'de> for Elements<'_, 'de> {
    type Error = Error;

    #[inline]
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(&mut *self.de).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        // Every element takes at least a byte: a claim beyond the bytes left is not believed.
        Some(self.left.min(self.de.bytes.len() - self.de.pos))
    }
}

/// The entries of a map.
pub(super) struct Entries<'a, 'de> {
    pub(super) de: &'a mut Deserializer<'de>,
    pub(super) left: usize,
}

impl<'de> de::MapAccess<'de> for Entries<'_, 'de> {
    type Error = Error;

    #[inline]
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(&mut *self.de).map(Some)
    }

    #[inline]
    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, Error> {
        seed.deserialize(&mut *self.de)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left.min((self.de.bytes.len() - self.de.pos) / 2))
    }
}

/// An enum value: its variant's name, then (when `content`) what the variant holds.
pub(super) struct Variant<'a, 'de> {
    pub(super) de: &'a mut Deserializer<'de>,
    pub(super) content: bool,
    /// The enum's name, and where the variant's name is (for messages).
    pub(super) name: &'static str,
    pub(super) at: usize,
}

impl<'a, 'de> de::EnumAccess<'de> for Variant<'a, 'de> {
    type Error = Error;
    type Variant = Self;

    fn variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<(T::Value, Self), Error> {
        let variant = seed.deserialize(&mut *self.de)?;
        Ok((variant, self))
    }
}

impl<'de> de::VariantAccess<'de> for Variant<'_, 'de> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        if self.content {
            // `{name: nil}`, as other writers may put it.
            <() as de::Deserialize>::deserialize(&mut *self.de)
        } else {
            Ok(())
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        if !self.content {
            return Err(de::Error::invalid_type(
                de::Unexpected::UnitVariant,
                &"a variant with content",
            ));
        }
        seed.deserialize(&mut *self.de)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        if !self.content {
            return Err(de::Error::invalid_type(
                de::Unexpected::UnitVariant,
                &"a tuple variant",
            ));
        }
        self.de.any(visitor, false)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        if !self.content {
            return Err(de::Error::invalid_type(
                de::Unexpected::UnitVariant,
                &"a struct variant",
            ));
        }
        let owner = Owner::Variant {
            name: self.name,
            at: self.at,
        };
        self.de.fields(owner, fields, visitor)
    }
}
