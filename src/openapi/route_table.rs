//! The path templates of the API document and the methods each serves, so a request that no
//! route matched is told apart: a wrong method (405 with `Allow`) or an unknown path (404). Built
//! from the document, never from the handlers, so that shared state can hold it without importing
//! them.

pub const API_PREFIX: &str = "/api/v1";
pub const OPENAPI_PATH: &str = "/openapi.json";

/// Path templates and their methods, from the OpenAPI document.
pub struct RouteTable {
    routes: Vec<(actix_web::dev::ResourceDef, Vec<String>)>,
}

impl RouteTable {
    pub fn from_openapi(doc: &utoipa::openapi::OpenApi) -> RouteTable {
        let routes = doc
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let mut methods = Vec::new();
                for (method, op) in [
                    ("GET", &item.get),
                    ("POST", &item.post),
                    ("PUT", &item.put),
                    ("PATCH", &item.patch),
                    ("DELETE", &item.delete),
                ] {
                    if op.is_some() {
                        methods.push(method.to_string());
                    }
                }
                (actix_web::dev::ResourceDef::new(path.as_str()), methods)
            })
            .collect::<Vec<_>>();
        // Literal paths before templates: `/victims/search` is not the victim "search".
        let mut routes = routes;
        routes.sort_by_key(|(def, _)| def.pattern().is_some_and(|p| p.contains('{')));
        let mut table = RouteTable { routes };
        // Served beside the API but not part of it.
        for meta in [OPENAPI_PATH, "/docs", "/docs/{_:.*}"].into_iter().chain(crate::console::PATHS) {
            table.routes.push((actix_web::dev::ResourceDef::new(meta), vec!["GET".to_string()]));
        }
        table
    }

    /// The template `path` matches (`/api/v1/victims/{id}`), whatever its method.
    pub fn template_for(&self, path: &str) -> Option<&str> {
        self.route_of(path).and_then(|(def, _)| def.pattern())
    }

    /// Methods served at `path`, if the path is served at all.
    pub fn methods_for(&self, path: &str) -> Option<&[String]> {
        self.route_of(path).map(|(_, m)| m.as_slice())
    }

    fn route_of(&self, path: &str) -> Option<&(actix_web::dev::ResourceDef, Vec<String>)> {
        self.routes.iter().find(|(def, _)| def.is_match(path))
    }
}
