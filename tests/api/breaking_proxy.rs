//! A proxy in front of a test app that breaks its answers the way a regression would, so the
//! fuzzing test can show that schemathesis notices: JSON objects lose their `id`, and one
//! operation answers with a status its contract does not list.

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, http::StatusCode, web};
use serde_json::Value;

use crate::paths;

/// The operation whose status is broken.
pub const BROKEN_STATUS_PATH: &str = paths::ORGANIZATIONS;

/// Starts the proxy; returns its address (`http://127.0.0.1:PORT`).
pub fn start(upstream: String) -> String {
    let client = reqwest::Client::new();
    let server = HttpServer::new(move || {
        let (client, upstream) = (client.clone(), upstream.clone());
        App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
            forward(client.clone(), upstream.clone(), req, body)
        }))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .expect("bind the proxy");
    let address = format!("http://{}", server.addrs()[0]);
    tokio::spawn(server.run());
    address
}

async fn forward(client: reqwest::Client, upstream: String, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes()).expect("a method");
    let mut outgoing = client.request(method, format!("{upstream}{}", req.uri()));
    for (name, value) in req.headers() {
        if name != "host" && name != "content-length" {
            outgoing = outgoing.header(name.as_str(), value.as_bytes());
        }
    }
    let Ok(answer) = outgoing.body(body.to_vec()).send().await else {
        return HttpResponse::BadGateway().finish();
    };
    let mut status = answer.status().as_u16();
    let content_type =
        answer.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let mut bytes = answer.bytes().await.unwrap_or_default().to_vec();
    if req.path() == BROKEN_STATUS_PATH && req.method() == actix_web::http::Method::GET {
        status = 299;
    }
    // The document itself passes unharmed: it is what the answers are judged against.
    if content_type == "application/json"
        && req.path() != "/openapi.json"
        && let Ok(mut value) = serde_json::from_slice::<Value>(&bytes)
    {
        drop_ids(&mut value);
        bytes = serde_json::to_vec(&value).expect("JSON");
    }
    let mut response = HttpResponse::build(StatusCode::from_u16(status).expect("a status"));
    if !content_type.is_empty() {
        response.content_type(content_type);
    }
    response.body(bytes)
}

fn drop_ids(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.remove("id");
            map.values_mut().for_each(drop_ids);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_ids),
        _ => {}
    }
}
