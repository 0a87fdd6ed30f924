namespace Appliance.Config;

/// <summary>
/// The config used when none is given (README quick start): HTTPS on 127.0.0.1:8443 with a self-signed
/// localhost certificate made on first start, HTTP on 127.0.0.1:8080 redirecting to it, and a demo route.
/// Nothing listens on a public address.
/// </summary>
public static class EmbeddedConfig
{
    public const string Json = """
    {
      "server": { "stateDirectory": "state", "shutdownTimeout": "30s" },
      "admin": { "socketPath": "state/admin.sock" },
      "listeners": [
        { "name": "https", "address": "127.0.0.1:8443", "tls": true, "protocols": ["h2", "http/1.1"], "defaultCertificate": "localhost" },
        { "name": "http", "address": "127.0.0.1:8080", "tls": false, "redirectToHttps": true, "httpsPort": 8443 }
      ],
      "certificates": [
        { "name": "localhost", "hosts": ["localhost"], "certificatePath": "state/tls/localhost.crt", "keyPath": "state/tls/localhost.key", "selfSigned": true }
      ],
      "routes": [
        { "id": "demo", "match": { "path": "/" },
          "direct": { "status": 200, "contentType": "text/plain; charset=utf-8", "body": "Hello from Appliance!\n" } },
        { "id": "health", "match": { "path": "/healthz", "methods": ["GET", "HEAD"] },
          "direct": { "status": 200, "contentType": "application/json", "body": "{\"status\":\"ok\"}" } },
        { "id": "hello", "match": { "path": "/hello/{name}" },
          "redirect": { "status": 302, "location": "/?from={name}" } }
      ]
    }
    """;
}
