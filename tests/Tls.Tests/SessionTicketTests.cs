using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Appliance.Tls.Tests.Support;

namespace Appliance.Tls.Tests;

/// <summary>The ticket keys are process-wide: these tests change them, so they run alone.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class SessionTicketCollection
{
    public const string Name = "session tickets";
}

/// <summary>
/// The appliance's own session-ticket keys (<see cref="SessionTickets"/>) on a pinned context behind a real
/// SslStream server, driven by `openssl s_client`: which handshakes resume, and how many NewSessionTicket messages
/// each gets (s_client -msg).
/// </summary>
[Collection(SessionTicketCollection.Name)]
public sealed class SessionTicketTests : IAsyncLifetime
{
    private readonly LoadedCertificate _certificate = TestCertificates.Create("tickets", "tickets.example.com");
    private readonly TempDirectory _directory = new();
    private CertificateStore _store = null!;
    private LoopbackTlsServer _server = null!;

    public Task InitializeAsync()
    {
        SessionTickets.Configure(SessionTicketSettings.Default with { Secrets = [RandomNumberGenerator.GetBytes(80)] });
        _store = new CertificateStore([_certificate], "tickets", new TlsServerOptions());
        _store.BeginService(); // pins the context at its first handshake, as a listener does
        _server = LoopbackTlsServer.Start(_store);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        _store.EndService();
        SessionTickets.Configure(SessionTicketSettings.Default);
        _directory.Dispose();
    }

    private async Task<(bool Reused, int Tickets, string Output)> Handshake(string protocol, string sessionFile, bool resume, params string[] extra)
    {
        OpenSsl.Result r = await OpenSsl.RunAsync(["s_client", "-connect", _server.Address, "-servername", "tickets.example.com", "-ign_eof", "-msg",
            protocol, resume ? "-sess_in" : "-sess_out", sessionFile, .. extra]);
        Assert.True(r.ExitCode == 0 && r.Output.Contains("hello"), r.All);
        bool reused = r.Output.Contains("Reused, TLSv1.", StringComparison.Ordinal);
        Assert.True(reused || r.Output.Contains("New, TLSv1.", StringComparison.Ordinal), r.All);
        return (reused, Regex.Matches(r.Output, @"<<< TLS 1\.[23], Handshake \[length [0-9a-f]+\], NewSessionTicket").Count, r.Output);
    }

    [Fact]
    public async Task A_resumed_tls13_handshake_always_gets_a_fresh_ticket_and_a_dropped_key_means_a_full_handshake()
    {
        Assert.True(SessionTickets.Available);
        string session = _directory.File("s13.pem");

        var full = await Handshake("-tls1_3", session, resume: false);
        Assert.False(full.Reused);
        Assert.Equal(1, full.Tickets); // the default: one per full handshake

        // Clients use a TLS 1.3 ticket once (RFC 8446 §C.4): each resumption must leave them a new one.
        var resumed = await Handshake("-tls1_3", session, resume: true);
        Assert.True(resumed.Reused, resumed.Output);
        Assert.Equal(1, resumed.Tickets);

        byte[] old = SessionTickets.Secrets[0];
        SessionTickets.Configure(SessionTicketSettings.Default with { Secrets = [RandomNumberGenerator.GetBytes(80), old] });
        var renewed = await Handshake("-tls1_3", session, resume: true);
        Assert.True(renewed.Reused, renewed.Output); // an older key still opens it
        Assert.Equal(1, renewed.Tickets);

        SessionTickets.Configure(SessionTicketSettings.Default with { Secrets = [RandomNumberGenerator.GetBytes(80)] });
        var dropped = await Handshake("-tls1_3", session, resume: true);
        Assert.False(dropped.Reused, dropped.Output); // a key no longer held: a full handshake
        Assert.Equal(1, dropped.Tickets);
    }

    [Fact]
    public async Task Without_renewal_a_resumed_tls13_handshake_gets_a_ticket_only_when_its_key_no_longer_seals()
    {
        byte[] key = SessionTickets.Secrets[0];
        SessionTickets.Configure(new SessionTicketSettings(true, [key], TimeSpan.FromHours(1), RenewOnResumption: false));
        Assert.Contains("no fresh ticket on a TLS 1.3 resumption", SessionTickets.Describe());
        string session = _directory.File("s13-keep.pem");
        var full = await Handshake("-tls1_3", session, resume: false);
        Assert.Equal(1, full.Tickets); // a full handshake still gets one

        var resumed = await Handshake("-tls1_3", session, resume: true);
        Assert.True(resumed.Reused, resumed.Output);
        Assert.Equal(0, resumed.Tickets);
        var again = await Handshake("-tls1_3", session, resume: true); // the same ticket opens again
        Assert.True(again.Reused, again.Output);
        Assert.Equal(0, again.Tickets);

        // Sealed by a key that no longer seals: a fresh one, so the client moves to the new key.
        SessionTickets.Configure(new SessionTicketSettings(true, [RandomNumberGenerator.GetBytes(80), key], TimeSpan.FromHours(1), RenewOnResumption: false));
        var renewed = await Handshake("-tls1_3", session, resume: true);
        Assert.True(renewed.Reused, renewed.Output);
        Assert.Equal(1, renewed.Tickets);
    }

    [Fact]
    public async Task A_resumed_tls12_handshake_gets_a_fresh_ticket_only_when_its_key_no_longer_seals()
    {
        string session = _directory.File("r12.pem");
        Assert.Equal(1, (await Handshake("-tls1_2", session, resume: false)).Tickets);
        var resumed = await Handshake("-tls1_2", session, resume: true);
        Assert.True(resumed.Reused, resumed.Output);
        Assert.Equal(0, resumed.Tickets); // sealed by the newest key: kept (TLS 1.2 clients reuse tickets)

        SessionTickets.Configure(SessionTicketSettings.Default with { Secrets = [RandomNumberGenerator.GetBytes(80), SessionTickets.Secrets[0]] });
        var renewed = await Handshake("-tls1_2", session, resume: true);
        Assert.True(renewed.Reused, renewed.Output);
        Assert.Equal(1, renewed.Tickets); // its key was superseded: a ticket from the newest follows
    }

    [Fact]
    public async Task Tls12_tickets_are_sealed_with_the_configured_keys()
    {
        byte[] a = RandomNumberGenerator.GetBytes(80);
        SessionTickets.Configure(SessionTicketSettings.Default with { Secrets = [a] });
        string session = _directory.File("s12.pem");
        var full = await Handshake("-tls1_2", session, resume: false);
        Assert.Contains("TLS session ticket:", full.Output);

        SessionTickets.Configure(SessionTicketSettings.Default with { Secrets = [RandomNumberGenerator.GetBytes(80)] });
        var other = await Handshake("-tls1_2", session, resume: true);
        Assert.False(other.Reused, other.Output); // OpenSSL's own keys did not change: only ours could refuse it

        SessionTickets.Configure(SessionTicketSettings.Default with { Secrets = [a] });
        var same = await Handshake("-tls1_2", session, resume: true);
        Assert.True(same.Reused, same.Output);
    }

    [Fact]
    public async Task Turned_off_no_ticket_is_issued_and_sessions_resume_from_the_cache()
    {
        SessionTickets.Configure(SessionTicketSettings.Default with { Enabled = false, Secrets = [RandomNumberGenerator.GetBytes(80)] });
        string session = _directory.File("off.pem");

        var full = await Handshake("-tls1_2", session, resume: false);
        Assert.DoesNotContain("TLS session ticket:", full.Output);
        var resumed = await Handshake("-tls1_2", session, resume: true);
        Assert.True(resumed.Reused, resumed.Output);

        SessionTickets.Configure(SessionTicketSettings.Default with { Secrets = [RandomNumberGenerator.GetBytes(80)] });
        var on = await Handshake("-tls1_2", _directory.File("on.pem"), resume: false);
        Assert.Contains("TLS session ticket:", on.Output);
    }

    [Fact]
    public async Task Turned_off_a_tls13_ticket_names_a_cached_session()
    {
        SessionTickets.Configure(SessionTicketSettings.Default with { Enabled = false });
        string session = _directory.File("cache13.pem");
        var full = await Handshake("-tls1_3", session, resume: false);
        Assert.False(full.Reused);
        Assert.Equal(1, full.Tickets); // one, a cached session
        Assert.Equal(1, SessionTickets.Status().CachedSessions);

        var resumed = await Handshake("-tls1_3", session, resume: true);
        Assert.True(resumed.Reused, resumed.Output);
        Assert.Equal(1, resumed.Tickets);
        Assert.Equal(2, SessionTickets.Status().CachedSessions); // OpenSSL keeps the used one until it expires or is pushed out
    }

    [Fact]
    public async Task A_full_tls13_handshake_gets_as_many_tickets_as_configured_and_none_means_no_resumption()
    {
        SessionTickets.Configure(SessionTicketSettings.Default with { Secrets = SessionTickets.Secrets, PerHandshake = 3 });
        Assert.Contains("3 TLS 1.3 ticket(s) per full handshake", SessionTickets.Describe());
        Assert.Equal(3, SessionTickets.Status().PerHandshake);
        string session = _directory.File("three.pem");
        var full = await Handshake("-tls1_3", session, resume: false);
        Assert.False(full.Reused);
        Assert.Equal(3, full.Tickets);
        var resumed = await Handshake("-tls1_3", session, resume: true);
        Assert.True(resumed.Reused, resumed.Output);
        Assert.Equal(1, resumed.Tickets); // a resumption gets one whatever the count

        SessionTickets.Configure(SessionTicketSettings.Default with { Secrets = SessionTickets.Secrets, PerHandshake = 0 });
        string none = _directory.File("none.pem");
        var bare = await Handshake("-tls1_3", none, resume: false);
        Assert.Equal(0, bare.Tickets);
        Assert.False(File.Exists(none), "s_client saved a session"); // nothing to resume with: s_client saves a TLS 1.3 session from a ticket
        Assert.Equal(1, (await Handshake("-tls1_2", _directory.File("none12.pem"), resume: false)).Tickets); // TLS 1.2 keeps its ticket

        SessionTickets.Configure(SessionTicketSettings.Default with { Secrets = SessionTickets.Secrets });
        Assert.Equal(1, (await Handshake("-tls1_3", _directory.File("back.pem"), resume: false)).Tickets); // an apply takes it back
    }

    [Fact]
    public async Task The_cache_keeps_at_most_its_size_and_counts_what_it_let_go()
    {
        SessionTickets.Configure(SessionTicketSettings.Default with { Enabled = false, CacheSize = 3 });
        Assert.Contains("up to 3 sessions per certificate", SessionTickets.Describe());
        for (int i = 0; i < 4; i++)
        {
            Assert.False((await Handshake("-tls1_2", _directory.File($"lru-{i}.pem"), resume: false)).Reused);
        }

        SessionTicketStatus status = SessionTickets.Status();
        Assert.Equal(3, status.CacheSize);
        Assert.InRange(status.CachedSessions, 2, 3); // OpenSSL 3.0 makes room counting the one it is adding: size - 1
        Assert.True(status.CacheFullEvictions >= 1, $"{status.CacheFullEvictions} evictions");
        Assert.True((await Handshake("-tls1_2", _directory.File("lru-3.pem"), resume: true)).Reused); // the newest stays
        Assert.False((await Handshake("-tls1_2", _directory.File("lru-0.pem"), resume: true)).Reused); // the least recently used went
    }

    /// <summary>A clock the test moves (the timer it makes is real, and its ticks read this clock: idempotent).</summary>
    private sealed class ManualClock : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = new(2026, 11, 30, 12, 0, 0, TimeSpan.Zero);

        public override DateTimeOffset GetUtcNow() => Now;
    }

    [Fact]
    public void Generated_keys_rotate_on_time_and_each_opens_tickets_for_the_lifetime_after_it_stops_sealing()
    {
        var clock = new ManualClock();
        SessionTickets.Configure(SessionTicketSettings.Default with { Rotate = TimeSpan.FromMinutes(30) }, clock);
        byte[] first = SessionTickets.Secrets[0];
        clock.Now += TimeSpan.FromMinutes(29);
        SessionTickets.Tick();
        Assert.Same(first, SessionTickets.Secrets[0]); // not due yet

        clock.Now += TimeSpan.FromMinutes(1);
        SessionTickets.Tick();
        Assert.Equal(2, SessionTickets.Secrets.Count); // first stopped sealing at 12:30
        for (int i = 0; i < 3; i++)
        {
            clock.Now += TimeSpan.FromMinutes(30);
            SessionTickets.Tick();
        }

        Assert.Equal(5, SessionTickets.Secrets.Count); // 14:00: first retired 1.5 h ago, still opens tickets
        Assert.Contains(first, SessionTickets.Secrets);
        clock.Now += TimeSpan.FromMinutes(30);
        SessionTickets.Tick();
        Assert.DoesNotContain(first, SessionTickets.Secrets); // 14:30: 2 h after it stopped sealing
        Assert.Equal(5, SessionTickets.Secrets.Count);

        // Rotations by hand in quick succession drop nothing early: retention is by age, not by count.
        byte[] newest = SessionTickets.Secrets[0];
        Assert.True(SessionTickets.Rotate());
        Assert.True(SessionTickets.Rotate());
        Assert.Equal(7, SessionTickets.Secrets.Count);
        Assert.Contains(newest, SessionTickets.Secrets);
        Assert.Equal(clock.Now, SessionTickets.Status().NewestKeySince);

        // A changed rotation keeps the keys (outstanding tickets still open); revoking drops every older key at once.
        SessionTickets.Configure(SessionTicketSettings.Default with { Rotate = TimeSpan.FromHours(1) }, clock);
        Assert.Equal(7, SessionTickets.Secrets.Count);
        Assert.True(SessionTickets.Rotate(revoke: true));
        Assert.Single(SessionTickets.Secrets);
        Assert.DoesNotContain(newest, SessionTickets.Secrets);

        SessionTickets.Configure(SessionTicketSettings.Default with { Secrets = [RandomNumberGenerator.GetBytes(80)] }, clock);
        Assert.False(SessionTickets.Rotate()); // keys from files rotate by rewriting the files
        Assert.False(SessionTickets.Rotate(revoke: true));
        Assert.True(SessionTickets.Status().FromFiles);
        clock.Now += TimeSpan.FromDays(1);
        SessionTickets.Tick();
        Assert.Single(SessionTickets.Secrets); // file keys never expire by age
    }

    [Fact]
    public async Task A_ticket_opens_only_for_the_certificate_that_issued_it()
    {
        LoadedCertificate other = TestCertificates.Create("other", "other.example.com");
        var store = new CertificateStore([_certificate, other], "tickets", new TlsServerOptions());
        store.BeginService();
        await using var server = LoopbackTlsServer.Start(store);
        string session = _directory.File("cross.pem");
        async Task<string> Connect(string name, string option) =>
            (await OpenSsl.RunAsync(["s_client", "-connect", server.Address, "-servername", name, "-ign_eof", "-tls1_3", option, session])).Output;

        Assert.Contains("New, TLSv1.3", await Connect("tickets.example.com", "-sess_out"));
        Assert.Contains("Reused, TLSv1.3", await Connect("tickets.example.com", "-sess_in"));
        string crossed = await Connect("other.example.com", "-sess_in"); // the same secret, another certificate's keys
        Assert.Contains("New, TLSv1.3", crossed);
        Assert.Contains("CN = other", crossed);
        store.EndService();
    }

    [Fact]
    public void Keys_are_derived_per_certificate_and_the_same_on_every_machine()
    {
        byte[] secret = RandomNumberGenerator.GetBytes(80);
        byte[] certificateA = SHA256.HashData("a"u8), certificateB = SHA256.HashData("b"u8);
        TicketKey a1 = TicketKey.Derive(secret, certificateA), a2 = TicketKey.Derive(secret, certificateA), b = TicketKey.Derive(secret, certificateB);
        Assert.Equal(a1.Name, a2.Name);
        Assert.Equal(a1.Aes, a2.Aes);
        Assert.Equal(a1.Hmac, a2.Hmac);
        Assert.NotEqual(a1.Name, b.Name);
        Assert.NotEqual(a1.Aes, b.Aes);
        Assert.NotEqual(a1.Aes, a1.Hmac);

        TicketKeys ring = TicketKeys.Derive([RandomNumberGenerator.GetBytes(80), secret, RandomNumberGenerator.GetBytes(48)], certificateA);
        Assert.Equal(1, ring.Find(a1.Name));
        Assert.Equal(-1, ring.Find(b.Name));
        Assert.Equal(-1, ring.Find(new byte[16]));
    }

    [Theory]
    [InlineData(80, true)]
    [InlineData(48, true)]
    [InlineData(0, false)]
    [InlineData(32, false)]
    [InlineData(81, false)]
    public void Key_lengths(long length, bool accepted) => Assert.Equal(accepted, SessionTicketSettings.IsKeyLength(length));

    [Fact]
    public void Settings_compare_by_their_keys()
    {
        byte[] k = RandomNumberGenerator.GetBytes(80);
        var one = SessionTicketSettings.Default with { Secrets = [k] };
        Assert.Equal(one, SessionTicketSettings.Default with { Secrets = [(byte[])k.Clone()] });
        Assert.NotEqual(one, SessionTicketSettings.Default with { Secrets = [RandomNumberGenerator.GetBytes(80)] });
        Assert.NotEqual(one, one with { Enabled = false });
        Assert.Contains("1 key file", one.ToString());
        Assert.Contains("a new one every 1h", SessionTicketSettings.Default.ToString());
    }
}
