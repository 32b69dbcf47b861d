//! Users and groups against the real authorizer.

use govcloud::api::CloudResourceRequest;
use govcloud_testenv::User;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use kube::Api;
use kube::api::{ApiResource, DynamicObject, ListParams, ObjectMeta, PostParams};

use crate::support::{Ctx, TestResult};

fn forbidden<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> String {
    match result {
        Err(kube::Error::Api(status)) if status.code == 403 => status.message,
        other => panic!("expected 403 Forbidden, got {other:?}"),
    }
}

pub async fn a_unit_member_is_refused_what_rbac_does_not_grant(ctx: Ctx) -> TestResult {
    let unit = ctx.unit("rbac").await;
    let other = ctx.unit("rbac-other").await;
    // Read-only access for the unit's group in its own namespace.
    let roles: Api<Role> = Api::namespaced(ctx.admin(), &unit.namespace);
    roles
        .create(
            &PostParams::default(),
            &Role {
                metadata: ObjectMeta {
                    name: Some("read-requests".into()),
                    ..Default::default()
                },
                rules: Some(vec![PolicyRule {
                    api_groups: Some(vec!["govcloud.dev".into()]),
                    resources: Some(vec!["cloudresourcerequests".into()]),
                    verbs: vec!["get".into(), "list".into(), "watch".into()],
                    ..Default::default()
                }]),
            },
        )
        .await?;
    Api::<RoleBinding>::namespaced(ctx.admin(), &unit.namespace)
        .create(
            &PostParams::default(),
            &RoleBinding {
                metadata: ObjectMeta {
                    name: Some("read-requests".into()),
                    ..Default::default()
                },
                role_ref: RoleRef {
                    api_group: Some("rbac.authorization.k8s.io".into()),
                    kind: "Role".into(),
                    name: "read-requests".into(),
                },
                subjects: Some(vec![Subject {
                    kind: "Group".into(),
                    name: unit.group.clone(),
                    api_group: Some("rbac.authorization.k8s.io".into()),
                    ..Default::default()
                }]),
            },
        )
        .await?;

    let member = ctx.client(&unit.member("clerk")).await;
    let own: Api<CloudResourceRequest> = Api::namespaced(member.clone(), &unit.namespace);
    // Granted through the group. RBAC caches settle within a moment.
    crate::support::eventually(
        "the binding to take effect",
        std::time::Duration::from_secs(10),
        || {
            let own = own.clone();
            async move { own.list(&ListParams::default()).await.ok() }
        },
    )
    .await;

    // Not granted: writing, and anything in another unit's namespace.
    let ar = ApiResource::erase::<CloudResourceRequest>(&());
    let writer: Api<DynamicObject> = Api::namespaced_with(member.clone(), &unit.namespace, &ar);
    let obj: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "govcloud.dev/v1alpha1", "kind": "CloudResourceRequest",
        "metadata": {"name": "x"}, "spec": {}
    }))?;
    let message = forbidden(writer.create(&PostParams::default(), &obj).await);
    assert!(
        message.contains(&format!(
            "User \"clerk@{}\" cannot create resource \"cloudresourcerequests\"",
            unit.id
        )),
        "{message}"
    );
    let theirs: Api<CloudResourceRequest> = Api::namespaced(member, &other.namespace);
    let message = forbidden(theirs.list(&ListParams::default()).await);
    assert!(
        message.contains(&format!("in the namespace \"{}\"", other.namespace)),
        "{message}"
    );

    // The same name without the group gets nothing.
    let outsider = ctx
        .client(&User::new(format!("clerk@{}", unit.id), None))
        .await;
    let message = forbidden(
        Api::<CloudResourceRequest>::namespaced(outsider, &unit.namespace)
            .list(&ListParams::default())
            .await,
    );
    assert!(
        message.contains("cannot list resource \"cloudresourcerequests\""),
        "{message}"
    );
    Ok(())
}
