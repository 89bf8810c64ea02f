// Renders /openapi.json with the vendored Swagger UI (static/swagger-ui, see its LICENSE).
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    tryItOutEnabled: false,
  });
});
