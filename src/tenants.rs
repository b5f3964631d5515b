//! [`Directory`]: the tenants this process serves, created, changed,
//! suspended and deleted at run time by the operator API.
//!
//! Source of truth: the store's `tenants` table (each tenant's settings as
//! the JSON of a `[[tenants]]` entry, without its key; keys live only as
//! digests in `api_keys`). The config file is the seed: on start, an entry
//! the table has never seen is created, an entry that changed since it was
//! last applied is applied again (the operator edited the file on
//! purpose), and an unchanged entry leaves the table as the API left it —
//! so a tenant changed or deleted over the API stays that way across
//! restarts. See [`reconcile`].
//!
//! Every change is written to the store first and then applied to the
//! running parts, in this order, while holding one lock (so two operator
//! calls never interleave):
//! - the HTTP key cache ([`Keys`]): new settings, a suspension or a
//!   deletion take effect for the very next request;
//! - the webhook signing policies ([`Policies`]) and the store's webhook
//!   URL and credit account;
//! - the actors ([`Registry`]): a tenant's supervisor is started, stopped
//!   (its sessions unbind) or told its new channel list, which it applies
//!   without touching unchanged channels.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use actix_web::web;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use smppd_actors::Registry;
use smppd_sqlite::{DeletedTenant, Done, Store, StoreError, TenantRow};

use crate::config::{self, ChannelConfig, Config, ConfigError, TenantConfig};
use crate::fair::Paces;
use crate::http::auth::{key_hash, new_key, Keys, TenantInfo};
use crate::webhooks::Policies;

/// How long stopping a tenant waits for its sessions to unbind.
const UNBIND_TIMEOUT: Duration = Duration::from_secs(10);

/// Shortest API key the operator may choose for a tenant.
pub const MIN_OPERATOR_KEY: usize = 16;

/// One tenant as the directory keeps it.
#[derive(Debug, Clone)]
pub struct Managed {
    /// Its settings (`api_key` empty: keys are kept as digests only).
    pub config: TenantConfig,
    /// Suspended: no sessions, every API call refused with 403.
    pub suspended: bool,
}

/// Why an operator call was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No tenant (or channel) of that name.
    #[error("{0}")]
    NotFound(String),
    /// It exists already.
    #[error("{0}")]
    Conflict(String),
    /// The body is not a JSON object, or has a field that cannot be set
    /// this way.
    #[error("{detail}")]
    Invalid {
        /// The field at fault.
        field: String,
        /// What is wrong.
        detail: String,
    },
    /// A setting failed the same checks the config file gets.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// The store could not record the change (nothing was applied).
    #[error("the change could not be stored: {0}")]
    Store(#[from] StoreError),
}

fn invalid(field: &str, detail: impl Into<String>) -> AdminError {
    AdminError::Invalid {
        field: field.to_string(),
        detail: detail.into(),
    }
}

/// The tenants, and the running parts a change is applied to.
pub struct Directory {
    tenants: tokio::sync::Mutex<BTreeMap<String, Managed>>,
    store: Store,
    registry: Registry,
    keys: web::Data<Keys>,
    policies: Policies,
    paces: Paces,
    admin_token: Option<String>,
}

/// Waits for a store write on the calling (async) task.
pub(crate) async fn write<T: Send + 'static>(start: impl FnOnce(Done<T>)) -> Result<T, StoreError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    start(Box::new(move |r| drop(tx.send(r))));
    rx.await.map_err(|_| StoreError::WriterGone)?
}

/// Waits for a store write on the calling (blocking) thread: start-up only.
fn write_blocking<T: Send + 'static>(start: impl FnOnce(Done<T>)) -> Result<T, StoreError> {
    let (tx, rx) = std::sync::mpsc::channel();
    start(Box::new(move |r| drop(tx.send(r))));
    rx.recv().map_err(|_| StoreError::WriterGone)?
}

/// JSON with object keys sorted at every level, so equal settings give
/// equal digests whatever order a map iterated in.
fn canonical(value: &Value) -> String {
    let mut out = String::new();
    write_sorted(value, &mut out);
    out
}

fn write_sorted(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<_> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::from(key.as_str()).to_string());
                out.push(':');
                write_sorted(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_sorted(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The settings as stored: canonical JSON, no key.
fn settings_json(tenant: &TenantConfig) -> String {
    canonical(&serde_json::to_value(tenant).unwrap_or(Value::Null))
}

/// Channel keys added after the first digests were stored, with their
/// defaults. While at its default such a key is left out of the digest:
/// otherwise upgrading would make every config-file tenant look edited and
/// re-apply its entry over what the operator API changed since.
fn later_channel_defaults() -> [(&'static str, Value); 16] {
    [
        ("default_alphabet", Value::from("gsm")),
        ("message_id_bases", Value::from("text")),
        ("source_addr_ton", Value::Null),
        ("source_addr_npi", Value::Null),
        ("dest_addr_ton", Value::Null),
        ("dest_addr_npi", Value::Null),
        ("service_type", Value::from("")),
        ("bind_addr_ton", Value::from(0)),
        ("bind_addr_npi", Value::from(0)),
        ("address_range", Value::from("")),
        ("tls", Value::from(false)),
        ("tls_ca_file", Value::Null),
        ("tls_server_name", Value::Null),
        ("tls_cert_file", Value::Null),
        ("tls_key_file", Value::Null),
        ("long_messages", Value::from("udh")),
    ]
}

/// Tenant keys added after the first digests were stored: see
/// [`later_channel_defaults`].
fn later_tenant_defaults() -> [(&'static str, Value); 1] {
    [("allowed_senders", Value::Null)]
}

/// Removes each of `defaults`' keys from `map` where it has that value.
fn remove_defaults(map: &mut Map<String, Value>, defaults: &[(&str, Value)]) {
    for (key, default) in defaults {
        if map.get(*key) == Some(default) {
            map.remove(*key);
        }
    }
}

/// What identifies a config-file entry, key included.
fn seed_digest(tenant: &TenantConfig) -> [u8; 32] {
    let mut settings = serde_json::to_value(tenant).unwrap_or(Value::Null);
    if let Some(map) = settings.as_object_mut() {
        remove_defaults(map, &later_tenant_defaults());
    }
    if let Some(Value::Array(channels)) = settings.get_mut("channels") {
        let defaults = later_channel_defaults();
        for channel in channels.iter_mut().filter_map(Value::as_object_mut) {
            remove_defaults(channel, &defaults);
        }
    }
    let mut hash = Sha256::new();
    hash.update(canonical(&settings).as_bytes());
    hash.update(b"\n");
    hash.update(tenant.api_key.as_bytes());
    hash.finalize().into()
}

/// Brings the store's `tenants` table in line with the config file (see
/// the module documentation) and returns the live tenants. Runs once, on
/// start, before anything serves.
pub fn reconcile(config: &Config, store: &Store) -> Result<Vec<Managed>, StoreError> {
    let rows: HashMap<String, TenantRow> = store
        .tenant_rows()?
        .into_iter()
        .map(|r| (r.id.clone(), r))
        .collect();
    for tenant in &config.tenants {
        let digest = seed_digest(tenant);
        let suspended = match rows.get(&tenant.id) {
            None => false,
            Some(row) if row.seed_digest == Some(digest) => {
                if row.deleted {
                    log::warn!(
                        "[{}] is in the config file but was deleted over the operator API; \
                         not started (edit its entry or create it again to bring it back)",
                        tenant.id
                    );
                }
                continue;
            }
            Some(row) => {
                log::info!(
                    "[{}] config file entry changed since it was last applied: applying it",
                    tenant.id
                );
                row.suspended && !row.deleted
            }
        };
        let row = tenant_row(tenant, suspended, Some(digest));
        write_blocking(|done| store.put_tenant(row, done))?;
        let hash = key_hash(&tenant.api_key);
        let revoked = write_blocking(|done| store.seed_api_key(&tenant.id, hash, done))?;
        if revoked > 0 {
            log::warn!(
                "[{}] new API key in the config: revoked {revoked} older key(s)",
                tenant.id
            );
        }
    }
    let mut live = Vec::new();
    for row in store.tenant_rows()?.into_iter().filter(|r| !r.deleted) {
        let config: TenantConfig = serde_json::from_str(&row.settings).map_err(|e| {
            StoreError::Corrupt(format!("tenant {:?}: unreadable settings: {e}", row.id))
        })?;
        live.push(Managed {
            config,
            suspended: row.suspended,
        });
    }
    // Every tenant's settings at once: one group commit, not one per tenant.
    let written: Vec<_> = live
        .iter()
        .map(|tenant| {
            let (tx, rx) = std::sync::mpsc::channel();
            store_settings(store, &tenant.config, Box::new(move |r| drop(tx.send(r))));
            rx
        })
        .collect();
    for rx in written {
        rx.recv().map_err(|_| StoreError::WriterGone)??;
    }
    Ok(live)
}

/// Writes the store-side parts of a tenant's settings (see
/// [`Store::set_tenant_settings`]).
fn store_settings(store: &Store, tenant: &TenantConfig, done: Done<()>) {
    let opening_credit = tenant
        .price_per_part
        .map(|_| config::micros(tenant.credit.unwrap_or(0.0)));
    store.set_tenant_settings(
        &tenant.id,
        tenant.webhook_url.as_deref(),
        opening_credit,
        done,
    );
}

/// A tenant's row as stored: its settings as canonical JSON, no key.
fn tenant_row(tenant: &TenantConfig, suspended: bool, seed_digest: Option<[u8; 32]>) -> TenantRow {
    TenantRow {
        id: tenant.id.clone(),
        settings: settings_json(tenant),
        suspended,
        deleted: false,
        seed_digest,
    }
}

/// The JSON an operator sees: the settings with every default filled in,
/// secrets left out (`webhook_secret_set`, `password_set` say whether
/// there is one), and `status`.
pub fn view(tenant: &Managed) -> Value {
    let mut value = serde_json::to_value(&tenant.config).unwrap_or(Value::Null);
    if let Some(map) = value.as_object_mut() {
        let secret = map.remove("webhook_secret").is_some_and(|s| !s.is_null());
        map.insert("webhook_secret_set".into(), secret.into());
        map.insert(
            "status".into(),
            if tenant.suspended {
                "suspended"
            } else {
                "active"
            }
            .into(),
        );
        if let Some(Value::Array(channels)) = map.get_mut("channels") {
            channels.iter_mut().for_each(channel_view);
        }
    }
    value
}

/// A channel as an operator sees it: no password.
pub fn channel_view(channel: &mut Value) {
    if let Some(map) = channel.as_object_mut() {
        let set = map.remove("password").is_some();
        map.insert("password_set".into(), set.into());
    }
}

/// RFC 7396 merge patch: `null` removes a key (back to its default).
fn merge(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (key, value) in patch {
        match value {
            Value::Null => {
                target.remove(key);
            }
            Value::Object(inner) => match target.get_mut(key) {
                Some(Value::Object(existing)) => merge(existing, inner),
                _ => {
                    let mut fresh = Map::new();
                    merge(&mut fresh, inner);
                    target.insert(key.clone(), Value::Object(fresh));
                }
            },
            other => {
                target.insert(key.clone(), other.clone());
            }
        }
    }
}

fn object(body: Value) -> Result<Map<String, Value>, AdminError> {
    match body {
        Value::Object(map) => Ok(map),
        _ => Err(invalid("", "the body must be a JSON object")),
    }
}

/// Deserializes settings with the config file's rules (unknown keys are
/// errors), naming the field at fault.
fn parse<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, AdminError> {
    serde_json::from_value(value).map_err(|e| {
        let message = e.to_string();
        // serde names an unknown or missing field in backquotes.
        let field = message
            .split('`')
            .nth(1)
            .filter(|_| message.contains("field"))
            .unwrap_or("")
            .to_string();
        AdminError::Invalid {
            field,
            detail: message,
        }
    })
}

impl Directory {
    /// The directory over the tenants [`reconcile`] returned, whose parts
    /// the caller has started.
    pub fn new(
        tenants: Vec<Managed>,
        store: Store,
        registry: Registry,
        keys: web::Data<Keys>,
        policies: Policies,
        paces: Paces,
        admin_token: Option<String>,
    ) -> Self {
        let tenants = tenants
            .into_iter()
            .map(|t| (t.config.id.clone(), t))
            .collect();
        Self {
            tenants: tokio::sync::Mutex::new(tenants),
            store,
            registry,
            keys,
            policies,
            paces,
            admin_token,
        }
    }

    /// Every tenant, by id.
    pub async fn list(&self) -> Vec<Managed> {
        self.tenants.lock().await.values().cloned().collect()
    }

    /// One tenant.
    pub async fn get(&self, id: &str) -> Option<Managed> {
        self.tenants.lock().await.get(id).cloned()
    }

    /// Creates a tenant from a `[[tenants]]`-shaped body. Its API key is
    /// the body's `api_key` (at least [`MIN_OPERATOR_KEY`] characters) or,
    /// without one, a generated key, returned here once.
    pub async fn create(&self, body: Value) -> Result<(Managed, Option<String>), AdminError> {
        let mut map = object(body)?;
        let chosen = match map.remove("api_key") {
            None | Some(Value::Null) => None,
            Some(Value::String(key)) => Some(key),
            Some(_) => return Err(invalid("api_key", "'api_key' must be a string")),
        };
        if let Some(key) = &chosen {
            if key.len() < MIN_OPERATOR_KEY
                || key.len() > 256
                || !key.chars().all(|c| c.is_ascii_graphic())
            {
                return Err(invalid(
                    "api_key",
                    format!(
                        "'api_key' must be {MIN_OPERATOR_KEY} to 256 printable ASCII characters \
                         without spaces (or left out to have one generated)"
                    ),
                ));
            }
        }
        let tenant: TenantConfig = parse(Value::Object(map))?;
        config::check_tenant_id(&tenant.id, "id")?;
        tenant.check("")?;
        let mut tenants = self.tenants.lock().await;
        if tenants.contains_key(&tenant.id) {
            return Err(AdminError::Conflict(format!(
                "tenant {:?} exists already",
                tenant.id
            )));
        }
        // Keys of other tenants (live or revoked) are refused by the store.
        if chosen.is_some() && chosen.as_deref() == self.admin_token.as_deref() {
            return Err(AdminError::Conflict(
                "that api_key is in use or was used before; choose another".into(),
            ));
        }
        let (key, generated) = match chosen {
            Some(key) => (key, None),
            None => {
                let key = new_key();
                (key.clone(), Some(key))
            }
        };
        let row = tenant_row(&tenant, false, None);
        let hash = key_hash(&key);
        write(|done| self.store.create_tenant(row, hash, done))
            .await
            .map_err(|e| match e {
                StoreError::KeyInUse => AdminError::Conflict(
                    "that api_key is in use or was used before; choose another".into(),
                ),
                other => AdminError::Store(other),
            })?;
        write(|done| store_settings(&self.store, &tenant, done)).await?;
        self.keys
            .set_tenant(TenantInfo::new(&tenant, false, &self.paces));
        self.keys.add_key(&tenant.id, hash);
        self.policies.set(&tenant.id, tenant.webhook_policy());
        self.registry.start_tenant(tenant.spec());
        log::info!(
            "[{}] tenant created with {} channel(s)",
            tenant.id,
            tenant.channels.len()
        );
        let managed = Managed {
            config: tenant,
            suspended: false,
        };
        tenants.insert(managed.config.id.clone(), managed.clone());
        Ok((managed, generated))
    }

    /// Changes a tenant's settings with a merge patch (`null` puts a
    /// setting back to its default). Its id, keys (rotate them), channels
    /// (their own calls) and starting `credit` (top up instead) are not
    /// changed this way.
    pub async fn update(&self, id: &str, patch: Value) -> Result<Managed, AdminError> {
        let patch = object(patch)?;
        for (field, hint) in [
            ("id", "a tenant's id cannot change"),
            (
                "api_key",
                "rotate keys with POST /admin/v1/tenants/{id}/keys/rotate",
            ),
            (
                "channels",
                "change channels with /admin/v1/tenants/{id}/channels",
            ),
            ("credit", "top up with POST /admin/v1/tenants/{id}/credit"),
        ] {
            if patch.contains_key(field) {
                return Err(invalid(
                    field,
                    format!("'{field}' cannot be patched: {hint}"),
                ));
            }
        }
        let mut tenants = self.tenants.lock().await;
        let current = tenants
            .get(id)
            .ok_or_else(|| AdminError::NotFound("no such tenant".into()))?;
        let mut merged = object(serde_json::to_value(&current.config).unwrap_or(Value::Null))?;
        merge(&mut merged, &patch);
        let tenant: TenantConfig = parse(Value::Object(merged))?;
        tenant.check("")?;
        let suspended = current.suspended;
        self.persist(&tenant, suspended).await?;
        write(|done| store_settings(&self.store, &tenant, done)).await?;
        self.keys
            .set_tenant(TenantInfo::new(&tenant, suspended, &self.paces));
        self.policies.set(&tenant.id, tenant.webhook_policy());
        log::info!("[{id}] tenant settings changed");
        let managed = Managed {
            config: tenant,
            suspended,
        };
        tenants.insert(id.to_string(), managed.clone());
        Ok(managed)
    }

    async fn persist(&self, tenant: &TenantConfig, suspended: bool) -> Result<(), StoreError> {
        let row = tenant_row(tenant, suspended, None);
        write(|done| self.store.put_tenant(row, done)).await
    }

    /// Suspends (`true`) or reactivates a tenant. Suspension refuses its
    /// API calls from the next request on and unbinds its sessions; its
    /// queued messages stay queued and go out after reactivation.
    pub async fn set_suspended(&self, id: &str, suspended: bool) -> Result<Managed, AdminError> {
        let mut tenants = self.tenants.lock().await;
        let current = tenants
            .get_mut(id)
            .ok_or_else(|| AdminError::NotFound("no such tenant".into()))?;
        if current.suspended == suspended {
            return Ok(current.clone());
        }
        self.persist(&current.config, suspended).await?;
        current.suspended = suspended;
        self.keys
            .set_tenant(TenantInfo::new(&current.config, suspended, &self.paces));
        if suspended {
            self.registry.stop_tenant(id, UNBIND_TIMEOUT).await;
            log::warn!("[{id}] tenant suspended: sessions closed, API calls refused");
        } else {
            self.registry.start_tenant(current.config.spec());
            log::info!("[{id}] tenant reactivated");
        }
        Ok(current.clone())
    }

    /// Deletes a tenant: its keys stop working at once, its sessions
    /// unbind, and everything it owns in the store goes (see
    /// `Store::delete_tenant`). The same id can be created again, fresh.
    pub async fn delete(&self, id: &str) -> Result<DeletedTenant, AdminError> {
        let mut tenants = self.tenants.lock().await;
        if !tenants.contains_key(id) {
            return Err(AdminError::NotFound("no such tenant".into()));
        }
        self.keys.remove_tenant(id);
        self.policies.set(id, None);
        self.paces.remove(id);
        self.registry.stop_tenant(id, UNBIND_TIMEOUT).await;
        let removed = write(|done| self.store.delete_tenant(id, done)).await?;
        tenants.remove(id);
        log::warn!(
            "[{id}] tenant deleted: {} messages ({} still queued) and {} inbound removed",
            removed.messages,
            removed.queued,
            removed.inbound
        );
        Ok(removed)
    }

    /// Adds a channel (a `[[tenants.channels]]`-shaped body); its sessions
    /// connect at once unless the tenant is suspended.
    pub async fn add_channel(&self, id: &str, body: Value) -> Result<Managed, AdminError> {
        let channel: ChannelConfig = parse(Value::Object(object(body)?))?;
        channel.check("")?;
        self.change_channels(id, |channels| {
            if channels.iter().any(|c| c.name == channel.name) {
                return Err(AdminError::Conflict(format!(
                    "channel {:?} exists already",
                    channel.name
                )));
            }
            channels.push(channel);
            Ok(())
        })
        .await
    }

    /// Changes a channel with a merge patch; its sessions are replaced by
    /// new ones with the new settings (the tenant's other channels are not
    /// touched).
    pub async fn update_channel(
        &self,
        id: &str,
        name: &str,
        patch: Value,
    ) -> Result<Managed, AdminError> {
        let patch = object(patch)?;
        if patch.get("name").is_some_and(|n| n.as_str() != Some(name)) {
            return Err(invalid("name", "a channel's name cannot change"));
        }
        self.change_channels(id, |channels| {
            let slot = channels
                .iter_mut()
                .find(|c| c.name == name)
                .ok_or_else(|| AdminError::NotFound("no such channel".into()))?;
            let mut merged = object(serde_json::to_value(&*slot).unwrap_or(Value::Null))?;
            merge(&mut merged, &patch);
            let channel: ChannelConfig = parse(Value::Object(merged))?;
            channel.check("")?;
            *slot = channel;
            Ok(())
        })
        .await
    }

    /// Removes a channel; its sessions unbind (what they held goes back to
    /// the tenant's queue).
    pub async fn delete_channel(&self, id: &str, name: &str) -> Result<Managed, AdminError> {
        self.change_channels(id, |channels| {
            let before = channels.len();
            channels.retain(|c| c.name != name);
            if channels.len() == before {
                return Err(AdminError::NotFound("no such channel".into()));
            }
            Ok(())
        })
        .await
    }

    async fn change_channels(
        &self,
        id: &str,
        change: impl FnOnce(&mut Vec<ChannelConfig>) -> Result<(), AdminError>,
    ) -> Result<Managed, AdminError> {
        let mut tenants = self.tenants.lock().await;
        let current = tenants
            .get_mut(id)
            .ok_or_else(|| AdminError::NotFound("no such tenant".into()))?;
        let mut tenant = current.config.clone();
        change(&mut tenant.channels)?;
        tenant.check("")?;
        self.persist(&tenant, current.suspended).await?;
        if !current.suspended {
            self.registry.reconfigure(tenant.spec());
        }
        log::info!("[{id}] channels changed: {} now", tenant.channels.len());
        current.config = tenant;
        Ok(current.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_canonical_form_does_not_depend_on_key_order() {
        let a: Value =
            serde_json::from_str(r#"{"b":1,"a":{"y":[1,{"d":2,"c":3}],"x":null}}"#).unwrap();
        let b: Value =
            serde_json::from_str(r#"{"a":{"x":null,"y":[1,{"c":3,"d":2}]},"b":1}"#).unwrap();
        assert_eq!(canonical(&a), canonical(&b));
        assert_eq!(
            canonical(&a),
            r#"{"a":{"x":null,"y":[1,{"c":3,"d":2}]},"b":1}"#
        );
    }

    #[test]
    fn a_merge_patch_sets_nested_keys_and_null_removes_them() {
        let mut target = object(serde_json::json!({"a": 1, "b": {"c": 2, "d": 3}})).unwrap();
        let patch = object(serde_json::json!({"a": null, "b": {"c": 9}, "e": "x"})).unwrap();
        merge(&mut target, &patch);
        assert_eq!(
            Value::Object(target),
            serde_json::json!({"b": {"c": 9, "d": 3}, "e": "x"})
        );
    }

    #[test]
    fn the_seed_digest_changes_with_the_key_and_the_settings() {
        let config =
            Config::parse("[[tenants]]\nid = \"a\"\napi_key = \"key-number-one\"\n").unwrap();
        let tenant = config.tenants[0].clone();
        let mut other_key = tenant.clone();
        other_key.api_key = "key-number-two".into();
        let mut other_rate = tenant.clone();
        other_rate.max_accept_rate = Some(5.0);
        assert_eq!(seed_digest(&tenant), seed_digest(&tenant.clone()));
        assert_ne!(seed_digest(&tenant), seed_digest(&other_key));
        assert_ne!(seed_digest(&tenant), seed_digest(&other_rate));
    }

    #[test]
    fn keys_added_later_leave_the_seed_digest_alone_at_their_defaults() {
        let text = "[[tenants]]\nid = \"a\"\napi_key = \"key-number-one\"\n\
                    [[tenants.channels]]\nname = \"c\"\nhost = \"h\"\nport = 1\n\
                    system_id = \"s\"\npassword = \"p\"\n";
        let tenant = Config::parse(text).unwrap().tenants[0].clone();
        // The digest an earlier build stored: the settings without those keys.
        let mut earlier = serde_json::to_value(&tenant).unwrap();
        for (key, _) in later_tenant_defaults() {
            let map = earlier.as_object_mut().unwrap();
            assert!(map.remove(key).is_some(), "{key} is serialized");
        }
        let channel = earlier["channels"][0].as_object_mut().unwrap();
        for (key, _) in later_channel_defaults() {
            assert!(channel.remove(key).is_some(), "{key} is serialized");
        }
        let mut hash = Sha256::new();
        hash.update(canonical(&earlier).as_bytes());
        hash.update(b"\n");
        hash.update(tenant.api_key.as_bytes());
        let stored: [u8; 32] = hash.finalize().into();
        assert_eq!(seed_digest(&tenant), stored);
        // Set to anything else, they count.
        let set = Config::parse(&format!("{text}service_type = \"CMT\"\n")).unwrap();
        assert_ne!(seed_digest(&set.tenants[0]), stored);
    }
}
