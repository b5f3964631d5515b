//! The OpenAPI document at `/openapi.json` describes every route the API
//! registers, and `/docs/` serves a browsable UI that needs nothing from
//! elsewhere.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;
use support::*;

/// The routes of `src/http/mod.rs`, as (METHOD, path).
/// The list is here so that a route added without a thought for the
/// document shows up as a difference to review, and it is checked against
/// both the source and the document.
const ROUTES: &[(&str, &str)] = &[
    ("DELETE", "/admin/v1/tenants/{id}"),
    ("DELETE", "/admin/v1/tenants/{id}/channels/{name}"),
    ("GET", "/admin/v1/connections"),
    ("GET", "/admin/v1/tenants"),
    ("GET", "/admin/v1/tenants/{id}"),
    ("GET", "/admin/v1/tenants/{id}/channels"),
    ("GET", "/admin/v1/tenants/{id}/channels/{name}"),
    ("GET", "/health"),
    ("GET", "/metrics"),
    ("GET", "/ready"),
    ("GET", "/v1/balance"),
    ("GET", "/v1/connections"),
    ("GET", "/v1/events"),
    ("GET", "/v1/inbound"),
    ("GET", "/v1/messages"),
    ("GET", "/v1/messages/{id}"),
    ("GET", "/v1/stats"),
    ("GET", "/v1/webhooks/dead-letters"),
    ("PATCH", "/admin/v1/tenants/{id}"),
    ("PATCH", "/admin/v1/tenants/{id}/channels/{name}"),
    ("POST", "/admin/v1/tenants"),
    ("POST", "/admin/v1/tenants/{id}/channels"),
    ("POST", "/admin/v1/tenants/{id}/credit"),
    ("POST", "/admin/v1/tenants/{id}/keys/rotate"),
    ("POST", "/admin/v1/tenants/{id}/reactivate"),
    ("POST", "/admin/v1/tenants/{id}/suspend"),
    ("POST", "/v1/messages"),
    ("POST", "/v1/messages/batch"),
    ("POST", "/v1/webhooks/dead-letters/{id}/replay"),
];

const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

/// Every `.route(web::METHOD()...)` under each `web::resource("PATH")` in
/// the source that registers the routes. (Routes registered another way,
/// e.g. through a `web::scope`, need this reader taught about it.)
fn registered_routes() -> BTreeSet<(String, String)> {
    let source = include_str!("../src/http/mod.rs");
    let mut routes = BTreeSet::new();
    let mut resource: Option<String> = None;
    for line in source.lines() {
        if let Some(rest) = line.split("web::resource(\"").nth(1) {
            resource = rest.split('"').next().map(str::to_string);
        }
        for method in METHODS {
            let upper = method.to_uppercase();
            if line.contains(&format!(".route(on(Method::{upper})")) {
                let path = resource
                    .clone()
                    .unwrap_or_else(|| panic!("a route before any resource: {line}"));
                routes.insert((upper, path));
            }
        }
    }
    routes
}

fn documented_routes(document: &Value) -> BTreeSet<(String, String)> {
    let paths = document["paths"].as_object().expect("paths is an object");
    paths
        .iter()
        .flat_map(|(path, item)| {
            METHODS
                .into_iter()
                .filter(|m| item.get(*m).is_some())
                .map(|m| (m.to_uppercase(), path.clone()))
        })
        .collect()
}

fn engine() -> (tempfile::TempDir, TestEngine) {
    let (dir, db) = temp_db();
    let engine = TestEngine::start(&config_text(&db, 9, &[ACME], ""));
    (dir, engine)
}

fn document(engine: &TestEngine) -> Value {
    let reply = engine.http().get("/openapi.json", None);
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.content_type, "application/json");
    reply.body
}

/// A client that shows redirects and lets any method through.
fn raw_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .max_redirects_will_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

#[test]
fn the_openapi_document_is_openapi_3_json_without_authentication() {
    let (_dir, engine) = engine();
    let document = document(&engine);
    let version = document["openapi"].as_str().expect("an openapi version");
    assert!(version.starts_with("3."), "openapi: {version}");
    assert!(document["info"]["title"].is_string());
    assert!(document["components"]["schemas"]["Problem"].is_object());
    for scheme in ["bearer", "api_key", "admin_token"] {
        assert!(
            document["components"]["securitySchemes"][scheme].is_object(),
            "security scheme {scheme}"
        );
    }
}

#[test]
fn the_openapi_document_lists_every_route() {
    let registered = registered_routes();
    let expected: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(
        registered, expected,
        "the routes of src/http/mod.rs changed: update ROUTES here, and document the new ones"
    );

    let (_dir, engine) = engine();
    let documented = documented_routes(&document(&engine));
    let missing: Vec<_> = registered.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&registered).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "registered but not documented: {missing:?}; documented but not registered: {extra:?}"
    );
}

#[test]
fn every_error_response_is_a_problem_document() {
    let (_dir, engine) = engine();
    let document = document(&engine);
    for (method, path) in ROUTES {
        let operation = &document["paths"][path][method.to_lowercase()];
        let responses = operation["responses"].as_object().unwrap();
        for (status, response) in responses {
            let code: u16 = status.parse().expect("numeric statuses");
            // /ready's 503 is its own answer ({"ready": false}), not an error.
            if code < 400 || *path == "/ready" {
                continue;
            }
            let content = response["content"].as_object().unwrap();
            assert_eq!(
                content.keys().collect::<Vec<_>>(),
                ["application/problem+json"],
                "{method} {path} {status}"
            );
            assert_eq!(
                content["application/problem+json"]["schema"]["$ref"],
                "#/components/schemas/Problem",
                "{method} {path} {status}"
            );
        }
    }
}

#[test]
fn tenant_operations_take_the_tenant_key_and_document_the_401() {
    let (_dir, engine) = engine();
    let document = document(&engine);
    for (method, path) in ROUTES.iter().filter(|(_, p)| p.starts_with("/v1/")) {
        let operation = &document["paths"][path][method.to_lowercase()];
        let schemes: Vec<String> = operation["security"]
            .as_array()
            .unwrap_or_else(|| panic!("{method} {path} has no security"))
            .iter()
            .flat_map(|requirement| requirement.as_object().unwrap().keys().cloned())
            .collect();
        assert_eq!(schemes, ["bearer", "api_key"], "{method} {path}");
        assert!(
            operation["responses"]["401"].is_object(),
            "{method} {path} documents no 401"
        );
    }
}

#[test]
fn a_405_names_the_documented_methods_in_allow() {
    let (_dir, engine) = engine();
    let document = document(&engine);
    let agent = raw_agent();
    let base = format!("http://{}", engine.addr);
    let paths = document["paths"].as_object().unwrap();
    for (path, item) in paths {
        let documented: Vec<String> = METHODS
            .into_iter()
            .filter(|m| item.get(*m).is_some())
            .map(str::to_uppercase)
            .collect();
        let concrete = path.replace("{id}", "1").replace("{name}", "x");
        // PUT is no route's method.
        assert!(!documented.contains(&"PUT".to_string()), "{path}");
        let response = agent
            .put(format!("{base}{concrete}"))
            .send_empty()
            .expect("PUT completes");
        assert_eq!(response.status(), 405, "PUT {path}");
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        assert_eq!(header("content-type"), "application/problem+json");
        assert_eq!(header("allow"), documented.join(", "), "PUT {path}");
    }
}

#[test]
fn the_docs_serve_a_browsable_ui_that_loads_nothing_from_elsewhere() {
    let (_dir, engine) = engine();
    let agent = raw_agent();
    let base = format!("http://{}", engine.addr);

    let redirect = agent.get(format!("{base}/docs")).call().unwrap();
    assert_eq!(redirect.status(), 302);
    assert_eq!(redirect.headers()["location"], "/docs/");

    let fetch = |file: &str| {
        let mut response = agent.get(format!("{base}/docs/{file}")).call().unwrap();
        assert_eq!(response.status(), 200, "/docs/{file}");
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_string();
        let body = response
            .body_mut()
            .with_config()
            .limit(16 * 1024 * 1024)
            .read_to_string()
            .unwrap();
        (content_type, body)
    };
    let (content_type, index) = fetch("");
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(index.contains("swagger-ui"), "{index}");
    // Every script and stylesheet the page loads is served from here.
    for asset in index
        .split(['"', '\''])
        .filter(|s| s.ends_with(".js") || s.ends_with(".css"))
    {
        assert!(
            !asset.contains("//"),
            "the page loads {asset} from elsewhere"
        );
        fetch(asset.trim_start_matches("./"));
    }
    let (_, initializer) = fetch("swagger-initializer.js");
    assert!(initializer.contains("\"/openapi.json\""), "{initializer}");
    assert!(!initializer.contains("http"), "{initializer}");
    assert!(initializer.contains("\"validatorUrl\": \"none\""));

    let missing = engine.http().get("/docs/no-such-file.js", None);
    assert_eq!(missing.status, 404);
    assert_eq!(missing.content_type, "application/problem+json");
}
