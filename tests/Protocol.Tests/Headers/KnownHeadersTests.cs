using System.Text;
using Appliance.Protocol.Headers;

namespace Appliance.Protocol.Tests.Headers;

public class KnownHeadersTests
{
    public static TheoryData<KnownHeader> AllKnown => new(Enum.GetValues<KnownHeader>().Where(h => h != KnownHeader.None));

    [Theory]
    [MemberData(nameof(AllKnown))]
    public void Lookup_round_trips_every_name_in_any_letter_case(KnownHeader header)
    {
        byte[] lower = KnownHeaders.LowercaseName(header).ToArray();
        byte[] canonical = KnownHeaders.Name(header).ToArray();

        Assert.Equal(Encoding.ASCII.GetString(lower), Encoding.ASCII.GetString(canonical).ToLowerInvariant());
        Assert.Equal(header, KnownHeaders.Lookup(lower));
        Assert.Equal(header, KnownHeaders.Lookup(canonical));
        Assert.Equal(header, KnownHeaders.Lookup(Encoding.ASCII.GetBytes(Encoding.ASCII.GetString(lower).ToUpperInvariant())));

        // Every mix of cases: flip each letter on its own and alternate.
        var random = new Random((int)header);
        for (int i = 0; i < 64; i++)
        {
            byte[] mixed = lower.Select(b => char.IsAsciiLetter((char)b) && random.Next(2) == 0 ? (byte)(b ^ 0x20) : b).ToArray();
            Assert.Equal(header, KnownHeaders.Lookup(mixed));
        }
    }

    [Theory]
    [MemberData(nameof(AllKnown))]
    public void Lookup_returns_none_for_near_misses(KnownHeader header)
    {
        byte[] name = KnownHeaders.Name(header).ToArray();
        for (int position = 0; position < name.Length; position++)
        {
            byte original = name[position];
            for (int b = 0; b < 256; b++)
            {
                bool sameLetter = char.IsAsciiLetter((char)original) && (b | 0x20) == (original | 0x20);
                if (b == original || sameLetter)
                {
                    continue;
                }

                byte[] miss = (byte[])name.Clone();
                miss[position] = (byte)b;
                Assert.True(KnownHeaders.Lookup(miss) == KnownHeader.None, $"{Encoding.Latin1.GetString(miss)} matched {KnownHeaders.Lookup(miss)}");
            }
        }
    }

    [Theory]
    [InlineData("")]
    [InlineData("X")]
    [InlineData("Hosts")]
    [InlineData("Hos")]
    [InlineData("Content-Lengt")]
    [InlineData("Content_Length")]
    [InlineData("ContentLength")]
    [InlineData("Content-Length ")]
    [InlineData("X-Custom-Header")]
    public void Lookup_returns_none_for_other_names(string name)
    {
        Assert.Equal(KnownHeader.None, KnownHeaders.Lookup(Encoding.ASCII.GetBytes(name)));
    }

    [Fact]
    public void Known_values_fit_a_presence_mask()
    {
        Assert.True((int)Enum.GetValues<KnownHeader>().Max() < 64);
        Assert.Equal(KnownHeaders.Last, Enum.GetValues<KnownHeader>().Max());
        Assert.True(KnownHeaders.Name(KnownHeader.None).IsEmpty);
    }
}
