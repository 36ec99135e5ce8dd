//! The daemon's shared state: the queue, the delivery executor, and the settings snapshot that
//! `postfix reload` swaps atomically. Components take `Arc<Settings>` when they start a piece of
//! work and keep it for that piece, so a reload never changes settings under a delivery.

use std::sync::{Arc, OnceLock, RwLock};

use config::MainCf;
use queue::{DirSync, Queue, QueueName};

use crate::cleanup::Cleanup;
use crate::local::exec::Exec;
use crate::{bounce, local, qmgr, smtpd};

/// Everything derived from main.cf.
#[derive(Debug)]
pub struct Settings {
    pub cfg: MainCf,
    pub cleanup: Cleanup,
    pub local: local::Settings,
    pub qmgr: qmgr::Settings,
    pub bounce: bounce::Settings,
    pub qmgr_soft_bounce: bool,
    /// smtpd services of master.cf, by service name.
    pub smtpd: std::collections::HashMap<String, Arc<smtpd::Settings>>,
}

impl Settings {
    pub fn new(
        cfg: MainCf,
        queue: &Queue,
        incoming_sync: Arc<DirSync>,
        switch_identity: bool,
        exec: &dyn Exec,
    ) -> Settings {
        Settings {
            cleanup: Cleanup::new(&cfg, queue.clone(), incoming_sync),
            local: local::Settings::new(&cfg, switch_identity),
            qmgr: qmgr::Settings::new(&cfg),
            bounce: bounce::Settings::new(&cfg),
            qmgr_soft_bounce: cfg.bool("soft_bounce"),
            smtpd: smtpd::settings_for(&cfg, &exec.tls_files()),
            cfg,
        }
    }
}

#[derive(Debug)]
pub struct Runtime {
    pub queue: Queue,
    pub incoming_sync: Arc<DirSync>,
    pub exec: Arc<dyn Exec>,
    pub switch_identity: bool,
    settings: RwLock<Arc<Settings>>,
    qmgr: OnceLock<qmgr::Sender>,
}

impl Runtime {
    pub fn new(cfg: MainCf, exec: Arc<dyn Exec>, switch_identity: bool) -> Runtime {
        let queue = Queue::new(cfg.path("queue_directory"));
        let incoming_sync = Arc::new(DirSync::new(queue.dir(QueueName::Incoming)));
        let settings = Settings::new(
            cfg,
            &queue,
            incoming_sync.clone(),
            switch_identity,
            exec.as_ref(),
        );
        Runtime {
            queue,
            incoming_sync,
            exec,
            switch_identity,
            settings: RwLock::new(Arc::new(settings)),
            qmgr: OnceLock::new(),
        }
    }

    pub fn settings(&self) -> Arc<Settings> {
        self.settings
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Install a new configuration (postfix reload).
    pub fn reload(&self, cfg: MainCf) {
        let s = Settings::new(
            cfg,
            &self.queue,
            self.incoming_sync.clone(),
            self.switch_identity,
            self.exec.as_ref(),
        );
        *self.settings.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(s);
    }

    pub fn set_qmgr(&self, tx: qmgr::Sender) {
        let _ = self.qmgr.set(tx);
    }

    /// Tell qmgr that a new message is in incoming/.
    pub fn incoming(&self, id: &str) {
        if let Some(tx) = self.qmgr.get() {
            let _ = tx.send(qmgr::Event::Incoming(id.to_string()));
        }
    }
}
