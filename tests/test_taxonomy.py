import pytest

from galaxalign.taxonomy import GALAXY10, GALAXY_MNIST, GZ2_TREE, PathError, get_label_set, make_prompt


def test_gz2_tree_has_eleven_tasks_and_37_answers_with_valid_links():
    assert list(GZ2_TREE.tasks) == [f"T{i:02d}" for i in range(1, 12)]
    answers = GZ2_TREE.answers
    assert len(answers) == 37
    assert len({a.id for a in answers}) == 37
    for task in GZ2_TREE.tasks.values():
        for a in task.answers:
            nxt = task.next_task(a.id)
            assert nxt is None or nxt in GZ2_TREE.tasks, (task.id, a.id, nxt)


def test_tree_links_follow_the_design():
    t = GZ2_TREE
    assert t["T01"].next_task("t01_smooth") == "T07"
    assert t["T01"].next_task("t01_features") == "T02"
    assert t["T01"].next_task("t01_star") is None
    assert t["T03"].next_task("t03_bar") == "T04"
    assert t["T11"].next_task("t11_cant_tell") == "T05"
    assert t["T06"].next_task("t06_yes") == "T08"
    assert t["T08"].next_task("t08_merger") is None


def test_galaxy10_names_and_order_match_the_real_data_set():
    assert GALAXY10.class_names == [
        "Disturbed", "Merging", "Round Smooth", "In-between Round Smooth", "Cigar Shaped Smooth",
        "Barred Spiral", "Unbarred Tight Spiral", "Unbarred Loose Spiral", "Edge-on without Bulge",
        "Edge-on with Bulge"]
    assert GALAXY_MNIST.class_names == ["smooth_round", "smooth_cigar", "edge_on_disk", "unbarred_spiral"]


@pytest.mark.parametrize("label_set", [GALAXY10, GALAXY_MNIST], ids=lambda ls: ls.name)
def test_every_class_path_is_valid_and_resolves_back_to_its_class(label_set):
    for cls in label_set:
        assert GZ2_TREE.validate(cls.path) == cls.path
        assert label_set.resolve(cls.path) == cls.index, cls.name


def test_prompts_follow_the_paper():
    assert GALAXY10[5].prompt == "A picture of a barred spiral galaxy"
    assert GALAXY10[3].prompt == "A picture of an in-between round smooth galaxy"
    assert GALAXY_MNIST[2].prompt == "A picture of an edge on disk galaxy"
    assert make_prompt("Round Smooth") == "A picture of a round smooth galaxy"
    assert len(set(GALAXY10.prompts)) == 10


def test_paths_that_describe_no_class_resolve_to_none():
    star = [("T01", "t01_star")]
    assert GALAXY10.resolve(star) is None
    featureless = [("T01", "t01_features"), ("T02", "t02_no"), ("T03", "t03_no_bar"), ("T04", "t04_no_spiral"),
                   ("T05", "t05_obvious"), ("T06", "t06_no")]
    assert GALAXY10.resolve(featureless) is None
    # an odd feature overrides the smooth shape: a round galaxy reported as merging is Merging
    merging = [("T01", "t01_smooth"), ("T07", "t07_round"), ("T06", "t06_yes"), ("T08", "t08_merger")]
    assert GALAXY10.resolve(merging) == 1


@pytest.mark.parametrize("path, message", [
    ([], "empty"),
    ([("T02", "t02_yes")], "tree asks T01"),
    ([("T01", "t01_nonsense")], "no answer"),
    ([("T01", "t01_smooth")], "stops before the end"),
    ([("T01", "t01_star"), ("T02", "t02_yes")], "after the end"),
    ([("T01", "t01_smooth"), ("T02", "t02_yes")], "tree asks T07"),
    (["T01"], "not a (task, answer) pair"),
])
def test_invalid_paths_are_rejected_with_the_step_that_broke(path, message):
    with pytest.raises(PathError, match=message.replace("(", r"\(").replace(")", r"\)")):
        GZ2_TREE.validate(path)


def test_unknown_label_set_names_the_known_ones():
    assert get_label_set("galaxy_mnist") is GALAXY_MNIST
    with pytest.raises(KeyError, match="galaxy10"):
        get_label_set("sdss")


def test_the_task_after_a_partial_path():
    assert GZ2_TREE.task_after([]) == GZ2_TREE.root
    assert GZ2_TREE.task_after([["T01", "t01_smooth"]]) == "T07"
    assert GZ2_TREE.task_after([["T01", "t01_smooth"], ["T07", "t07_round"], ["T06", "t06_no"]]) is None
