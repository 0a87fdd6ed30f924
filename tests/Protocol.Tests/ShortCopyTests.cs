namespace Appliance.Protocol.Tests;

public class ShortCopyTests
{
    [Fact]
    public void Every_length_lands_byte_for_byte_and_nothing_past_it()
    {
        // Each length band takes another move (0-3 bytes, 4-7, 8-15, 16-32, then a block copy).
        for (int length = 0; length <= 70; length++)
        {
            byte[] source = Enumerable.Range(0, length).Select(i => (byte)(i * 31 + length)).ToArray();
            byte[] destination = Enumerable.Repeat((byte)0xEE, length + 8).ToArray();
            ShortCopy.To(source, destination.AsSpan(3));
            Assert.Equal([0xEE, 0xEE, 0xEE, .. source, .. Enumerable.Repeat((byte)0xEE, 5)], destination);
        }
    }

    [Fact]
    public void Overlapping_source_and_destination_copy_as_memmove_does()
    {
        // A value set from a slice of itself (a path rewritten to its own tail, say), either way round.
        foreach (int length in new[] { 3, 7, 12, 20, 31, 50 })
        {
            foreach (int shift in new[] { -9, -1, 1, 5, 17 })
            {
                byte[] buffer = Enumerable.Range(0, 140).Select(i => (byte)i).ToArray();
                byte[] expected = (byte[])buffer.Clone();
                int from = 40, to = 40 + shift;
                expected.AsSpan(from, length).CopyTo(expected.AsSpan(to));
                ShortCopy.To(buffer.AsSpan(from, length), buffer.AsSpan(to));
                Assert.Equal(expected, buffer);
            }
        }
    }

    [Fact]
    public void A_destination_too_short_is_refused_untouched()
    {
        byte[] destination = new byte[4];
        Assert.Throws<ArgumentException>(() => ShortCopy.To(new byte[5], destination));
        Assert.All(destination, b => Assert.Equal(0, b));
    }
}
