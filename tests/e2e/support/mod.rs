//! What every control-plane test stands on: one real control plane per test
//! run (started on first use, stopped at the end), the CRDs and fixtures
//! installed, and per-test namespaces and users.

pub mod gate;
pub mod lab;
pub mod matrix;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use govcloud::api::keys;
use govcloud_testenv::{ControlPlane, Options, User};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use kube::{Api, Client};
use tokio::sync::OnceCell;

pub type Error = Box<dyn std::error::Error + Send + Sync>;
pub type TestResult = Result<(), Error>;
pub type TestFn = fn(Ctx) -> Pin<Box<dyn Future<Output = TestResult> + Send>>;

pub const FIELD_MANAGER: &str = "govcloud-tests";

/// The repository root.
pub fn repo() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn read(path: &str) -> String {
    let full = repo().join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("reading {}: {e}", full.display()))
}

/// The control plane and an administrator's client.
pub struct Env {
    pub plane: ControlPlane,
    pub admin: Client,
}

impl Env {
    async fn start() -> Result<Self, Error> {
        let plane = ControlPlane::start(Options {
            keep_dir: std::env::var_os("GOVCLOUD_KEEP_CONTROL_PLANE").is_some(),
            ..Options::default()
        })
        .await?;
        eprintln!(
            "control plane: kube-apiserver {} at {} (logs in {})",
            plane.version(),
            plane.server(),
            plane.dir().display()
        );
        let admin = plane.admin().await?;
        govcloud_testenv::install_basics(&admin, FIELD_MANAGER).await?;
        Ok(Self { plane, admin })
    }
}

static ENV: OnceCell<Env> = OnceCell::const_new();

pub async fn env() -> &'static Env {
    ENV.get_or_init(|| async {
        match Env::start().await {
            Ok(env) => env,
            Err(e) => panic!("the control plane did not start: {e}"),
        }
    })
    .await
}

/// Stops the control plane if a test started it.
pub fn shutdown() {
    // OnceCell in a static cannot be taken; stopping the processes is enough.
    if let Some(env) = ENV.get() {
        env.plane.shutdown();
    }
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// One test's view: clients and namespaces that are removed when it ends.
#[derive(Clone)]
pub struct Ctx {
    pub env: &'static Env,
    created: Arc<Mutex<Vec<String>>>,
}

/// A unit: its namespace, id and group.
#[derive(Clone, Debug)]
pub struct Unit {
    pub id: String,
    pub namespace: String,
    pub group: String,
}

impl Unit {
    /// A member of the unit's group.
    pub fn member(&self, name: &str) -> User {
        User::new(format!("{name}@{}", self.id), Some(&self.group))
    }
}

impl Ctx {
    pub async fn new() -> Self {
        Self {
            env: env().await,
            created: Arc::default(),
        }
    }

    pub fn admin(&self) -> Client {
        self.env.admin.clone()
    }

    pub async fn client(&self, user: &User) -> Client {
        self.env
            .plane
            .client(user)
            .await
            .unwrap_or_else(|e| panic!("client for {user:?}: {e}"))
    }

    fn unique(prefix: &str) -> String {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        format!("{prefix}-{n}")
    }

    /// A new namespace with the given labels and annotations.
    pub async fn namespace_with(
        &self,
        prefix: &str,
        labels: BTreeMap<String, String>,
        annotations: BTreeMap<String, String>,
    ) -> String {
        let name = Self::unique(prefix);
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some(labels),
                annotations: Some(annotations),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(self.admin())
            .create(&PostParams::default(), &ns)
            .await
            .unwrap_or_else(|e| panic!("creating namespace {name}: {e}"));
        self.created.lock().unwrap().push(name.clone());
        name
    }

    /// A unit namespace as the platform team creates it.
    pub async fn unit(&self, prefix: &str) -> Unit {
        let id = Self::unique(prefix);
        let group = format!("govcloud:unit:{id}");
        let namespace = self
            .namespace_with(
                &format!("unit-{id}"),
                BTreeMap::from([(keys::UNIT.into(), id.clone())]),
                BTreeMap::from([
                    (keys::UNIT_GROUP.into(), group.clone()),
                    (keys::UNIT_NAME.into(), format!("测试单位{id}")),
                ]),
            )
            .await;
        Unit {
            id,
            namespace,
            group,
        }
    }

    /// Deletes what the test created, without waiting.
    pub async fn cleanup(&self) {
        let names: Vec<String> = std::mem::take(&mut *self.created.lock().unwrap());
        let api = Api::<Namespace>::all(self.admin());
        for name in names {
            let _ = api.delete(&name, &DeleteParams::background()).await;
        }
    }
}

/// Polls `check` until it returns `Some`, failing after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
