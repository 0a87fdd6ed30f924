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
    public async Task A_resumed_tls13_handshake_gets_a_new_ticket_only_when_its_key_was_superseded()
    {
        Assert.True(SessionTickets.Available);
        string session = _directory.File("s13.pem");

        var full = await Handshake("-tls1_3", session, resume: false);
        Assert.False(full.Reused);
        Assert.Equal(2, full.Tickets); // OpenSSL's count after a full handshake, unchanged

        var resumed = await Handshake("-tls1_3", session, resume: true);
        Assert.True(resumed.Reused, resumed.Output);
        Assert.Equal(0, resumed.Tickets); // sealed by the newest key: no fresh ticket (OpenSSL alone sends one)

        byte[] old = SessionTickets.Secrets[0];
        SessionTickets.Configure(SessionTicketSettings.Default with { Secrets = [RandomNumberGenerator.GetBytes(80), old] });
        var renewed = await Handshake("-tls1_3", session, resume: true);
        Assert.True(renewed.Reused, renewed.Output);
        Assert.Equal(1, renewed.Tickets); // an older key still opens it, and the client gets a ticket from the newest

        SessionTickets.Configure(SessionTicketSettings.Default with { Secrets = [RandomNumberGenerator.GetBytes(80)] });
        var dropped = await Handshake("-tls1_3", session, resume: true);
        Assert.False(dropped.Reused, dropped.Output); // a key no longer held: a full handshake
        Assert.Equal(2, dropped.Tickets);
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
    public void Generated_keys_rotate_and_the_oldest_goes_after_the_ticket_lifetime()
    {
        var settings = SessionTicketSettings.Default with { Rotate = TimeSpan.FromMinutes(30) };
        Assert.Equal(5, settings.GeneratedKeys); // the newest and four predecessors: 2 h of tickets
        SessionTickets.Configure(settings);
        byte[] first = SessionTickets.Secrets[0];
        for (int i = 1; i <= 6; i++)
        {
            Assert.True(SessionTickets.Rotate());
            Assert.Equal(Math.Min(i + 1, 5), SessionTickets.Secrets.Count);
            Assert.Equal(i < 5, SessionTickets.Secrets.Contains(first));
        }

        SessionTickets.Configure(settings); // the same settings again (an apply): the ring keeps turning
        Assert.Equal(5, SessionTickets.Secrets.Count);
        SessionTickets.Configure(settings with { Rotate = TimeSpan.FromHours(1) });
        Assert.Single(SessionTickets.Secrets);
        SessionTickets.Configure(settings with { Secrets = [RandomNumberGenerator.GetBytes(80)] });
        Assert.False(SessionTickets.Rotate()); // keys from files rotate by rewriting the files
        Assert.True(SessionTickets.Status().FromFiles);
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
