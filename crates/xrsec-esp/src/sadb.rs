//! The SA database: inbound SAs by SPI, the outbound SA of each tunnel.
//!
//! Readers (the packet threads) load an immutable snapshot once per batch
//! with one atomic operation (`ArcSwap::load`) and take no lock; writers (the
//! control plane: install, replace, delete) serialise among themselves on a
//! mutex, copy the small table, change it and publish it. A packet thread
//! that still holds the previous snapshot finishes its batch with it, so an
//! SA deleted mid-batch carries at most that batch.
//!
//! During a rekey a tunnel has several inbound SAs (old and new SPIs both
//! accepted) and one outbound SA, switched in one store after the new
//! inbound SA is in (make-before-break).

use std::sync::{Arc, Mutex};

use arc_swap::{ArcSwap, Guard};

use crate::sa::{InboundSa, OutboundSa, TunnelId};

/// One immutable version of the table.
#[derive(Debug, Default)]
pub struct SaTable {
    /// Sorted by SPI (binary search: a handful of entries, no hashing).
    inbound: Vec<(u32, Arc<InboundSa>)>,
    /// Sorted by tunnel.
    outbound: Vec<(TunnelId, Arc<OutboundSa>)>,
}

impl SaTable {
    /// The inbound SA with this SPI.
    #[inline]
    pub fn inbound(&self, spi: u32) -> Option<&Arc<InboundSa>> {
        self.inbound
            .binary_search_by_key(&spi, |(s, _)| *s)
            .ok()
            .map(|i| &self.inbound[i].1)
    }

    /// The outbound SA of a tunnel.
    #[inline]
    pub fn outbound(&self, tunnel: TunnelId) -> Option<&Arc<OutboundSa>> {
        self.outbound
            .binary_search_by_key(&tunnel, |(t, _)| *t)
            .ok()
            .map(|i| &self.outbound[i].1)
    }

    /// Every inbound SA.
    pub fn inbound_sas(&self) -> impl Iterator<Item = &Arc<InboundSa>> {
        self.inbound.iter().map(|(_, sa)| sa)
    }

    /// Every outbound SA with its tunnel.
    pub fn outbound_sas(&self) -> impl Iterator<Item = (TunnelId, &Arc<OutboundSa>)> {
        self.outbound.iter().map(|(t, sa)| (*t, sa))
    }
}

/// The shared, lock-free-to-read SA table.
#[derive(Debug, Default)]
pub struct Sadb {
    table: ArcSwap<SaTable>,
    writer: Mutex<()>,
}

impl Sadb {
    /// An empty database.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current table, for one batch.
    #[inline]
    pub fn snapshot(&self) -> Guard<Arc<SaTable>> {
        self.table.load()
    }

    fn modify(&self, f: impl FnOnce(&mut SaTable)) {
        let _w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let cur = self.table.load_full();
        let mut next = SaTable {
            inbound: cur.inbound.clone(),
            outbound: cur.outbound.clone(),
        };
        f(&mut next);
        self.table.store(Arc::new(next));
    }

    /// Installs (or replaces) an inbound SA.
    pub fn install_inbound(&self, sa: Arc<InboundSa>) {
        self.modify(|t| {
            let spi = sa.spi();
            match t.inbound.binary_search_by_key(&spi, |(s, _)| *s) {
                Ok(i) => t.inbound[i].1 = sa,
                Err(i) => t.inbound.insert(i, (spi, sa)),
            }
        });
    }

    /// Sets (or replaces) a tunnel's outbound SA.
    pub fn set_outbound(&self, tunnel: TunnelId, sa: Arc<OutboundSa>) {
        self.modify(
            |t| match t.outbound.binary_search_by_key(&tunnel, |(x, _)| *x) {
                Ok(i) => t.outbound[i].1 = sa,
                Err(i) => t.outbound.insert(i, (tunnel, sa)),
            },
        );
    }

    /// Installs a new inbound SA and then switches the outbound one, in one
    /// published step (readers see both or neither).
    pub fn install_pair(
        &self,
        tunnel: TunnelId,
        inbound: Arc<InboundSa>,
        outbound: Arc<OutboundSa>,
    ) {
        self.modify(|t| {
            let spi = inbound.spi();
            match t.inbound.binary_search_by_key(&spi, |(s, _)| *s) {
                Ok(i) => t.inbound[i].1 = inbound,
                Err(i) => t.inbound.insert(i, (spi, inbound)),
            }
            match t.outbound.binary_search_by_key(&tunnel, |(x, _)| *x) {
                Ok(i) => t.outbound[i].1 = outbound,
                Err(i) => t.outbound.insert(i, (tunnel, outbound)),
            }
        });
    }

    /// Removes an inbound SA; `true` if it was there.
    pub fn remove_inbound(&self, spi: u32) -> bool {
        let mut found = false;
        self.modify(|t| {
            if let Ok(i) = t.inbound.binary_search_by_key(&spi, |(s, _)| *s) {
                t.inbound.remove(i);
                found = true;
            }
        });
        found
    }

    /// Removes a tunnel's outbound SA; `true` if there was one.
    pub fn remove_outbound(&self, tunnel: TunnelId) -> bool {
        let mut found = false;
        self.modify(|t| {
            if let Ok(i) = t.outbound.binary_search_by_key(&tunnel, |(x, _)| *x) {
                t.outbound.remove(i);
                found = true;
            }
        });
        found
    }

    /// Removes every SA of a tunnel.
    pub fn remove_tunnel(&self, tunnel: TunnelId) {
        self.modify(|t| {
            t.inbound.retain(|(_, sa)| sa.tunnel() != tunnel);
            t.outbound.retain(|(x, _)| *x != tunnel);
        });
    }
}
