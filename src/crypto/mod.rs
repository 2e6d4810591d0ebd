//! All cryptography lives here: a master key and what is derived from it (`keys`), the key
//! ring that holds a database's keys across rotations (`ring`), sealing secrets at rest
//! (`seal`), and the sealed OAuth state with its PKCE derivation (`state`).

pub mod keys;
pub mod ring;
pub mod seal;
pub mod state;

pub use keys::{Keys, MasterKey, StateKeys};
pub use ring::{KeyRing, KnownKey, OpenFailure, RingFile};
pub use seal::{KeyId, Sealer};
