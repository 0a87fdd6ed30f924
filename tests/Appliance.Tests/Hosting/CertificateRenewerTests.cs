using Appliance.Hosting;

namespace Appliance.Tests.Hosting;

public sealed class CertificateRenewerTests
{
    [Fact]
    public void Backoff_doubles_from_a_minute_with_jitter_and_stops_at_six_hours()
    {
        for (int i = 0; i < 200; i++)
        {
            Assert.InRange(CertificateRenewer.Backoff(1), TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(1.25));
            Assert.InRange(CertificateRenewer.Backoff(3), TimeSpan.FromMinutes(3), TimeSpan.FromMinutes(5));
            Assert.InRange(CertificateRenewer.Backoff(9), TimeSpan.FromHours(3), TimeSpan.FromHours(6));
            Assert.InRange(CertificateRenewer.Backoff(1000), TimeSpan.FromHours(4.5), TimeSpan.FromHours(6));
        }
    }
}
