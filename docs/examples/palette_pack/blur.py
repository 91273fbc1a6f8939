# custom_nodes/palette_pack/blur.py
import torch.nn.functional as F

from sigmagraph.engine import Hidden, Int, NodeOutput, Socket, node


@node(returns=["IMAGE"], category="palette")
def RepeatedBlur(images=Socket("IMAGE"), passes: int = Int(4, min=1, max=1000), ctx=Hidden.CONTEXT):
    """Box-blurs the images `passes` times, reporting progress after each pass."""
    x = images.movedim(-1, 1)
    for i in range(passes):
        x = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
        ctx.progress(i + 1, passes)
    return x.movedim(1, -1)


@node(category="palette", output_node=True)
def DescribeImage(images=Socket("IMAGE")):
    """Shows the mean colour of the images in the editor."""
    mean = images.mean(dim=(0, 1, 2)).tolist()
    return NodeOutput(ui={"text": [f"mean rgb {mean[0]:.3f} {mean[1]:.3f} {mean[2]:.3f}"]})
