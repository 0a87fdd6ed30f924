using System.Net.Http;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Appliance.Tls.Acme;

/// <summary>
/// One certificate from an ACME server, start to end (RFC 8555 §7.4): the account (kept in
/// <see cref="AcmeAccountStore"/>, registered once), a new order for the names, each pending authorization answered
/// with the configured challenge (published in <see cref="PendingChallenges"/> for the listeners to serve, and
/// withdrawn afterwards whatever happens), polling with the server's Retry-After, finalize with a CSR for a new
/// P-256 key, and the PEM chain, checked to hold that key and those names. Each step is reported through the
/// progress callback; a failure is an <see cref="AcmeProblemException"/> with the server's problem detail, or an
/// <see cref="AcmeProtocolException"/>.
/// </summary>
public sealed class AcmeIssuer(
    AcmeAccountStore accounts,
    PendingChallenges challenges,
    Func<X509Certificate2Collection?, HttpMessageHandler>? transport = null)
{
    private readonly Func<X509Certificate2Collection?, HttpMessageHandler> _transport = transport ?? AcmeClient.CreateHandler;

    /// <summary>The whole issuance, polling included.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>First wait between polls when the server gives no Retry-After; it doubles up to 5 s.</summary>
    public TimeSpan InitialPollInterval { get; init; } = TimeSpan.FromMilliseconds(250);

    /// <summary>A Retry-After longer than this is cut to it, so one answer cannot park the issuance.</summary>
    public TimeSpan MaxPollInterval { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Polls of one resource before giving up.</summary>
    public int MaxPolls { get; init; } = 60;

    public async Task<IssuedCertificate> IssueAsync(AcmeCertificateRequest request, Action<string> progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(Timeout);
        ECDsa accountKey = accounts.LoadOrCreateKey(out bool created);
        if (created)
        {
            progress($"account key created ({accounts.KeyPath}, mode 0600)");
        }

        using var client = new AcmeClient(request.Directory, accountKey, _transport(request.TrustAnchors));
        try
        {
            return await RunAsync(client, request, progress, deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new AcmeProtocolException($"the issuance did not finish within {Timeout.TotalMinutes:0.#} min");
        }
    }

    private async Task<IssuedCertificate> RunAsync(AcmeClient client, AcmeCertificateRequest request, Action<string> progress, CancellationToken ct)
    {
        await client.GetDirectoryAsync(ct).ConfigureAwait(false);
        client.AccountUrl = accounts.AccountUrl(request.Directory);
        bool cached = client.AccountUrl is not null;
        if (!cached)
        {
            await RegisterAsync(client, request, progress, ct).ConfigureAwait(false);
        }

        AcmeResponse<AcmeOrder> created;
        try
        {
            created = await client.NewOrderAsync(request.Names, ct).ConfigureAwait(false);
        }
        catch (AcmeProblemException e) when (cached && e.Is("accountDoesNotExist"))
        {
            // The server forgot the account (a test server restarted, an account was deleted): register the key again.
            progress("the cached account URL is unknown to the server; registering again");
            accounts.SetAccountUrl(request.Directory, null);
            await RegisterAsync(client, request, progress, ct).ConfigureAwait(false);
            created = await client.NewOrderAsync(request.Names, ct).ConfigureAwait(false);
        }

        string orderUrl = created.Location!;
        progress($"order created for {string.Join(", ", request.Names)} ({orderUrl})");
        await AuthorizeAsync(client, request, created.Value, progress, ct).ConfigureAwait(false);

        AcmeOrder ready = await PollAsync(() => client.GetOrderAsync(orderUrl, ct), o => o.Status != "pending", "order", ct).ConfigureAwait(false);
        if (ready.Status != "ready")
        {
            throw OrderFailed(ready, "before finalize");
        }

        using ECDsa certificateKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        await client.FinalizeAsync(ready.Finalize!, CreateSigningRequest(request.Names, certificateKey), ct).ConfigureAwait(false);
        progress("order finalized with a CSR for a new P-256 key");
        AcmeOrder issued = await PollAsync(() => client.GetOrderAsync(orderUrl, ct), o => o.Status is not ("processing" or "ready"), "order", ct)
            .ConfigureAwait(false);
        if (issued.Status != "valid")
        {
            throw OrderFailed(issued, "after finalize");
        }

        string pem = await client.DownloadCertificateAsync(issued.Certificate!, ct).ConfigureAwait(false);
        return Verify(pem, certificateKey, request.Names);
    }

    private async Task RegisterAsync(AcmeClient client, AcmeCertificateRequest request, Action<string> progress, CancellationToken ct)
    {
        AcmeResponse<AcmeAccount> account = await client.NewAccountAsync(request.Email, ct).ConfigureAwait(false);
        accounts.SetAccountUrl(request.Directory, account.Location);
        progress($"account registered: {account.Location}");
    }

    private async Task AuthorizeAsync(AcmeClient client, AcmeCertificateRequest request, AcmeOrder order, Action<string> progress, CancellationToken ct)
    {
        string type = request.Challenge == AcmeChallengeType.Http01 ? "http-01" : "tls-alpn-01";
        var published = new List<IDisposable>();
        try
        {
            var waiting = new List<(string Url, string Name)>();
            foreach (string url in order.Authorizations!)
            {
                AcmeAuthorization authorization = (await client.GetAuthorizationAsync(url, ct).ConfigureAwait(false)).Value;
                string name = authorization.Identifier!.Value!;
                if (authorization.Status == "valid")
                {
                    progress($"{name}: already authorized");
                    continue;
                }

                if (authorization.Status != "pending")
                {
                    throw AuthorizationFailed(authorization, name);
                }

                AcmeChallenge challenge = authorization.Challenges!.FirstOrDefault(c => c.Type == type)
                    ?? throw new AcmeProtocolException($"{name}: the server offers no {type} challenge (it offers: {string.Join(", ", authorization.Challenges!.Select(c => c.Type))})");
                string keyAuthorization = KeyAuthorization.Create(challenge.Token!, client.Thumbprint);
                published.Add(request.Challenge == AcmeChallengeType.Http01
                    ? challenges.AddHttp01(challenge.Token!, keyAuthorization)
                    : challenges.AddTlsAlpn01(name, keyAuthorization));
                if (challenge.Status == "pending")
                {
                    await client.RespondToChallengeAsync(challenge.Url!, ct).ConfigureAwait(false);
                }

                progress($"{name}: {type} challenge published, validation requested");
                waiting.Add((url, name));
            }

            foreach ((string url, string name) in waiting)
            {
                AcmeAuthorization done = await PollAsync(() => client.GetAuthorizationAsync(url, ct), a => a.Status != "pending", "authorization", ct)
                    .ConfigureAwait(false);
                if (done.Status != "valid")
                {
                    throw AuthorizationFailed(done, name);
                }

                progress($"{name}: authorization valid");
            }
        }
        finally
        {
            foreach (IDisposable p in published)
            {
                p.Dispose(); // withdrawn whatever happened: a token is served only while it is needed
            }
        }
    }

    /// <summary>Fetches until <paramref name="done"/>, waiting Retry-After (bounded) or a doubling interval between.</summary>
    private async Task<T> PollAsync<T>(Func<Task<AcmeResponse<T>>> fetch, Func<T, bool> done, string what, CancellationToken ct)
    {
        TimeSpan interval = InitialPollInterval;
        for (int poll = 1; ; poll++)
        {
            AcmeResponse<T> response = await fetch().ConfigureAwait(false);
            if (done(response.Value))
            {
                return response.Value;
            }

            if (poll >= MaxPolls)
            {
                throw new AcmeProtocolException($"{what} still not done after {MaxPolls} polls");
            }

            TimeSpan wait = response.RetryAfter is { } retryAfter
                ? TimeSpan.FromTicks(Math.Clamp(retryAfter.Ticks, InitialPollInterval.Ticks, MaxPollInterval.Ticks))
                : interval;
            await Task.Delay(wait, ct).ConfigureAwait(false);
            interval = TimeSpan.FromTicks(Math.Min(interval.Ticks * 2, TimeSpan.FromSeconds(5).Ticks));
        }
    }

    private static Exception AuthorizationFailed(AcmeAuthorization authorization, string name)
    {
        AcmeChallenge? failed = authorization.Challenges?.FirstOrDefault(c => c.Error is not null);
        return failed?.Error is { } problem
            ? AcmeProblemException.From(problem, 0, $"{name} {failed.Type}")
            : new AcmeProtocolException($"{name}: authorization is {authorization.Status}");
    }

    private static Exception OrderFailed(AcmeOrder order, string when) =>
        order.Error is { } problem
            ? AcmeProblemException.From(problem, 0, $"order {order.Status} {when}")
            : new AcmeProtocolException($"order is {order.Status} {when}");

    /// <summary>RFC 8555 §7.4: a PKCS#10 CSR for the names (SAN; CN the first name when it fits), signed by the new key.</summary>
    internal static byte[] CreateSigningRequest(IReadOnlyList<string> names, ECDsa key)
    {
        var subject = new X500DistinguishedNameBuilder();
        if (names[0].Length <= 64) // RFC 5280 ub-common-name
        {
            subject.AddCommonName(names[0]);
        }

        var request = new CertificateRequest(subject.Build(), key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        foreach (string name in names)
        {
            san.AddDnsName(name);
        }

        request.CertificateExtensions.Add(san.Build());
        return request.CreateSigningRequest();
    }

    /// <summary>The chain must start with a certificate for our key that covers every name asked for.</summary>
    internal static IssuedCertificate Verify(string pem, ECDsa key, IReadOnlyList<string> names)
    {
        var certificates = new X509Certificate2Collection();
        try
        {
            certificates.ImportFromPem(pem);
        }
        catch (CryptographicException e)
        {
            throw new AcmeProtocolException($"certificate: the PEM chain cannot be read: {e.Message}", e);
        }

        if (certificates.Count == 0)
        {
            throw new AcmeProtocolException("certificate: the PEM chain holds no certificate");
        }

        X509Certificate2 leaf = certificates[0];
        if (!leaf.PublicKey.ExportSubjectPublicKeyInfo().AsSpan().SequenceEqual(key.ExportSubjectPublicKeyInfo()))
        {
            throw new AcmeProtocolException("certificate: the first certificate is not for the key of our CSR");
        }

        var covered = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (X509Extension extension in leaf.Extensions)
        {
            if (extension is X509SubjectAlternativeNameExtension san)
            {
                covered.UnionWith(san.EnumerateDnsNames());
            }
        }

        if (names.FirstOrDefault(n => !covered.Contains(n)) is { } missing)
        {
            throw new AcmeProtocolException($"certificate: '{missing}' is not among its names");
        }

        string chain = string.Concat(certificates.Select(c => c.ExportCertificatePem() + "\n"));
        return new IssuedCertificate(chain, key.ExportPkcs8PrivateKeyPem(), leaf.SerialNumber, leaf.Issuer,
            new DateTimeOffset(leaf.NotBefore.ToUniversalTime(), TimeSpan.Zero), new DateTimeOffset(leaf.NotAfter.ToUniversalTime(), TimeSpan.Zero));
    }
}
