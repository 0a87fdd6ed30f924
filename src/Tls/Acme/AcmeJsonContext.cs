using System.Text.Json.Serialization;

namespace Appliance.Tls.Acme;

/// <summary>
/// Source-generated (AOT safe) JSON for ACME messages. Unknown members are skipped: servers add fields
/// (RFC 8555 §7.1 lets them), and only what the client reads is declared.
/// </summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    MaxDepth = 16)]
[JsonSerializable(typeof(AcmeDirectory))]
[JsonSerializable(typeof(AcmeAccount))]
[JsonSerializable(typeof(AcmeNewAccountRequest))]
[JsonSerializable(typeof(AcmeOrder))]
[JsonSerializable(typeof(AcmeNewOrderRequest))]
[JsonSerializable(typeof(AcmeFinalizeRequest))]
[JsonSerializable(typeof(AcmeAuthorization))]
[JsonSerializable(typeof(AcmeChallenge))]
[JsonSerializable(typeof(AcmeProblem))]
[JsonSerializable(typeof(JwsMessage))]
[JsonSerializable(typeof(JwsHeader))]
[JsonSerializable(typeof(AcmeEmptyObject))]
internal sealed partial class AcmeJsonContext : JsonSerializerContext;

/// <summary>The "{}" payload that asks the server to validate a challenge (RFC 8555 §7.5.1).</summary>
internal sealed class AcmeEmptyObject;
