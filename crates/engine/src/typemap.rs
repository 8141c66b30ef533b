//! A map from a Rust type to one value of it: how rule sets hang their own typed values on
//! engine structures (providers on a target, state on the analysis environment) without the
//! engine knowing their types.

use std::any::{Any, TypeId};
use std::fmt;
use std::sync::Arc;

/// A value a [`TypeMap`] can hold.
pub trait Entry: Any + Send + Sync + fmt::Debug {
    /// The name messages and `Debug` use (`LayerInfo`).
    const NAME: &'static str;
}

trait Erased: Send + Sync + fmt::Debug {
    fn as_any(&self) -> &dyn Any;
    fn name(&self) -> &'static str;
}

impl<T: Entry> Erased for T {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn name(&self) -> &'static str {
        T::NAME
    }
}

/// At most one value per type, in insertion order. Cloning shares the values.
#[derive(Clone, Default)]
pub struct TypeMap {
    entries: Vec<(TypeId, Arc<dyn Erased>)>,
}

impl TypeMap {
    /// An empty map.
    pub fn new() -> Self {
        TypeMap::default()
    }

    /// Sets the value of type `T`, replacing any earlier one.
    pub fn insert<T: Entry>(&mut self, value: T) {
        let id = TypeId::of::<T>();
        let value: Arc<dyn Erased> = Arc::new(value);
        match self.entries.iter_mut().find(|(t, _)| *t == id) {
            Some(slot) => slot.1 = value,
            None => self.entries.push((id, value)),
        }
    }

    /// The value of type `T`, if set.
    pub fn get<T: Entry>(&self) -> Option<&T> {
        let id = TypeId::of::<T>();
        self.entries.iter().find(|(t, _)| *t == id).and_then(|(_, v)| v.as_any().downcast_ref::<T>())
    }

    /// The names of the values held, in insertion order.
    pub fn names(&self) -> Vec<&'static str> {
        self.entries.iter().map(|(_, v)| v.name()).collect()
    }

    /// True if nothing is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl fmt::Debug for TypeMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.entries.iter().map(|(_, v)| (v.name(), v))).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct A(u32);
    impl Entry for A {
        const NAME: &'static str = "A";
    }
    #[derive(Debug, PartialEq)]
    struct B(&'static str);
    impl Entry for B {
        const NAME: &'static str = "B";
    }

    #[test]
    fn one_value_per_type() {
        let mut map = TypeMap::new();
        assert!(map.get::<A>().is_none());
        map.insert(A(1));
        map.insert(B("b"));
        map.insert(A(2));
        assert_eq!(map.get::<A>(), Some(&A(2)));
        assert_eq!(map.get::<B>(), Some(&B("b")));
        assert_eq!(map.names(), ["A", "B"]);
        assert_eq!(format!("{map:?}"), "{\"A\": A(2), \"B\": B(\"b\")}");
    }
}
